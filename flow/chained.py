"""Flow over a clip by chaining flows between consecutive frames.

Classical estimators lose thin structures that move several times their own
width between two frames; between consecutive frames motions are small, and
composing those flows tracks each pixel of frame 0 through the clip.
"""

import cv2
import numpy as np

from flow.estimators import estimate_flow


def compose_flows(steps_thw2: np.ndarray) -> np.ndarray:
  """Composes consecutive flows into the flow from the first to the last frame.

  Args:
    steps_thw2: (T, H, W, 2) flows frame t -> t + 1, pixels, (u, v).

  Returns:
    (H, W, 2) float32 flow frame 0 -> frame T: each pixel of frame 0 is
    carried along, sampling step t bilinearly at its current position
    (clamped to the border).
  """
  steps_thw2 = np.asarray(steps_thw2, np.float32)
  if steps_thw2.ndim != 4 or steps_thw2.shape[-1] != 2:
    raise ValueError(f"steps must be (T, H, W, 2), got {steps_thw2.shape}")
  h, w = steps_thw2.shape[1:3]
  grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
  total_hw2 = np.zeros((h, w, 2), np.float32)
  for step_hw2 in steps_thw2:
    total_hw2 += cv2.remap(
      step_hw2,
      grid_x + total_hw2[..., 0],
      grid_y + total_hw2[..., 1],
      cv2.INTER_LINEAR,
      borderMode=cv2.BORDER_REPLICATE,
    )
  return total_hw2


def estimate_chained_flow(
  video_thw3: np.ndarray,
  *,
  method: str = "dis",
  preset: str = "fast",
  min_size: int = 256,
  **options,
) -> np.ndarray:
  """Flow from the first to the last frame of a clip, through every frame.

  Args:
    video_thw3: (T + 1, H, W, 3) uint8 RGB clip, T >= 1.
    method, preset, min_size: as for `estimate_flow` (per frame pair).
    **options: method-specific keywords of `estimate_flow`, e.g. for
      "raft" `weights`, `variant`, `iters`.

  Returns:
    (H, W, 2) float32 flow frame 0 -> frame T, pixels, (u, v).
  """
  video_thw3 = np.asarray(video_thw3)
  if video_thw3.ndim != 4 or len(video_thw3) < 2:
    raise ValueError(
      f"video must be (T + 1, H, W, 3) with T >= 1, got {video_thw3.shape}"
    )
  steps_thw2 = estimate_flow(
    video_thw3[:-1],
    video_thw3[1:],
    method=method,
    preset=preset,
    min_size=min_size,
    **options,
  )
  return compose_flows(steps_thw2)
