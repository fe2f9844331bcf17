"""Frame and flow geometry: square frames at the flow and stored sizes.

The reference (REFERENCE.md 8.2, 8.3) stores every frame at 256 x 256,
resized with cv2 INTER_LINEAR without keeping the aspect ratio, estimates
flow at high resolution and stores it in 256-px units; the loader resizes
frames 256 -> S with INTER_LINEAR (no antialiasing) and the flow with a
bilinear align_corners resize after dividing it by 256 / S. We follow the
same two stages: raw -> square `flow_size` (flow is estimated here) -> S.
"""

import cv2
import numpy as np

ASPECTS = ("crop", "squash")
INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}


def center_square(frame_hwc: np.ndarray) -> np.ndarray:
  """The largest centred square of a frame, (side, side, C), a view."""
  h, w = frame_hwc.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  return frame_hwc[top : top + side, left : left + side]


def to_square(
  frame_hw3: np.ndarray,
  size: int,
  *,
  aspect: str = "crop",
  interpolation: str = "linear",
) -> np.ndarray:
  """A frame as a (size, size, 3) uint8 square.

  Args:
    frame_hw3: (H, W, 3) uint8 RGB.
    size: output side in pixels.
    aspect: "crop" keeps the centred square (shapes stay undistorted);
      "squash" resizes the whole frame (the reference; same for square
      sources).
    interpolation: "linear" (cv2 INTER_LINEAR, the reference) or "area"
      (INTER_AREA, antialiased when shrinking).
  """
  if aspect not in ASPECTS:
    raise ValueError(f"aspect must be one of {ASPECTS}, got {aspect!r}")
  if aspect == "crop":
    frame_hw3 = center_square(frame_hw3)
  if frame_hw3.shape[:2] == (size, size):
    return np.ascontiguousarray(frame_hw3)
  return cv2.resize(
    frame_hw3, (size, size), interpolation=INTERPOLATIONS[interpolation]
  )


def resize_flow(flow_hw2: np.ndarray, size: int) -> np.ndarray:
  """A square flow map resized to (size, size, 2), vectors rescaled.

  Bilinear with aligned corners (sample positions i * (H - 1) / (size - 1)),
  and vectors multiplied by size / H: pixels of the new grid, as the
  reference's F_256 / (256 / S) followed by an align_corners resize.
  """
  h = flow_hw2.shape[0]
  if flow_hw2.shape[:2] != (h, h):
    raise ValueError(f"flow must be square, got {flow_hw2.shape}")
  if h == size:
    return np.array(flow_hw2, np.float32)
  coords = np.linspace(0.0, h - 1.0, size, dtype=np.float32)
  map_x, map_y = np.meshgrid(coords, coords)
  out = cv2.remap(
    np.asarray(flow_hw2, np.float32),
    map_x,
    map_y,
    cv2.INTER_LINEAR,
    borderMode=cv2.BORDER_REPLICATE,
  )
  return out * np.float32(size / h)
