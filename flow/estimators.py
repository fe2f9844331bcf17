"""Optical flow between RGB frames: one entry point, several methods.

`estimate_flow` validates its input and dispatches to a method in `METHODS`.
A method is a function `(frames_a_nhw3, frames_b_nhw3, *, preset, min_size)
-> flow_nhw2` on a batch of uint8 RGB pairs; a ported network (e.g. RAFT with
user-supplied weights) slots in as another entry.

Flow convention (shared by every dataset and by evaluation): flow[y, x] is
the displacement in pixels of the input resolution that carries pixel (x, y)
of frame a to its position in frame b; channel 0 = u (+x right), channel 1 =
v (+y down).
"""

from collections.abc import Callable

import cv2
import numpy as np

DIS_PRESETS = {
  "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
  "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
  "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _upscale_factor(height: int, width: int, min_size: int) -> int:
  """Smallest integer factor that brings the shorter side to >= min_size."""
  if min_size <= 0:
    return 1
  return max(1, -(-min_size // min(height, width)))


def _dis_pair(
  dis: cv2.DISOpticalFlow, a_hw3: np.ndarray, b_hw3: np.ndarray, factor: int
) -> np.ndarray:
  """DIS flow of one pair, estimated at `factor` x the input size."""
  h, w = a_hw3.shape[:2]
  gray_a = cv2.cvtColor(a_hw3, cv2.COLOR_RGB2GRAY)
  gray_b = cv2.cvtColor(b_hw3, cv2.COLOR_RGB2GRAY)
  if factor > 1:
    big = (w * factor, h * factor)
    gray_a = cv2.resize(gray_a, big, interpolation=cv2.INTER_LINEAR)
    gray_b = cv2.resize(gray_b, big, interpolation=cv2.INTER_LINEAR)
  flow_hw2 = dis.calc(gray_a, gray_b, None)
  if factor > 1:
    # Block-average back to the input grid (integer factor keeps pixel
    # centres aligned), then express vectors in input pixels.
    flow_hw2 = cv2.resize(flow_hw2, (w, h), interpolation=cv2.INTER_AREA)
    flow_hw2 /= factor
  return flow_hw2.astype(np.float32, copy=False)


def dis_flow(
  frames_a_nhw3: np.ndarray,
  frames_b_nhw3: np.ndarray,
  *,
  preset: str = "medium",
  min_size: int = 256,
) -> np.ndarray:
  """OpenCV DIS flow for a batch of pairs (validated uint8 RGB).

  Args:
    frames_a_nhw3: (N, H, W, 3) uint8 RGB source frames.
    frames_b_nhw3: (N, H, W, 3) uint8 RGB target frames.
    preset: "ultrafast", "fast" or "medium".
    min_size: inputs whose shorter side is below this are upscaled by an
      integer factor for estimation (DIS patches are 8 px and lose detail on
      tiny frames); 0 disables upscaling.

  Returns:
    (N, H, W, 2) float32 flow in pixels of the input resolution.
  """
  if preset not in DIS_PRESETS:
    raise ValueError(
      f"unknown DIS preset {preset!r}; choose one of {sorted(DIS_PRESETS)}"
    )
  dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
  factor = _upscale_factor(*frames_a_nhw3.shape[1:3], min_size)
  return np.stack(
    [_dis_pair(dis, a, b, factor) for a, b in zip(frames_a_nhw3, frames_b_nhw3)]
  )


FlowMethod = Callable[..., np.ndarray]

METHODS: dict[str, FlowMethod] = {"dis": dis_flow}


def _check_frames(frames_a: np.ndarray, frames_b: np.ndarray) -> None:
  for name, frames in (("frames_a", frames_a), ("frames_b", frames_b)):
    if frames.dtype != np.uint8:
      raise ValueError(f"{name} must be uint8 RGB, got dtype {frames.dtype}")
    if frames.ndim not in (3, 4) or frames.shape[-1] != 3:
      raise ValueError(
        f"{name} must have shape (H, W, 3) or (N, H, W, 3), got {frames.shape}"
      )
    if min(frames.shape[-3:-1]) < 2:
      raise ValueError(f"{name} is too small for flow: {frames.shape}")
  if frames_a.shape != frames_b.shape:
    raise ValueError(
      f"frame shapes differ: {frames_a.shape} vs {frames_b.shape}"
    )


def estimate_flow(
  frames_a: np.ndarray,
  frames_b: np.ndarray,
  *,
  method: str = "dis",
  preset: str = "medium",
  min_size: int = 256,
) -> np.ndarray:
  """Optical flow from frames_a to frames_b.

  Args:
    frames_a: uint8 RGB, one frame (H, W, 3) or a batch (N, H, W, 3).
    frames_b: uint8 RGB of the same shape.
    method: a key of `METHODS` ("dis").
    preset: speed/quality preset of the method ("ultrafast", "fast",
      "medium" for DIS).
    min_size: shorter side (pixels) below which frames are upscaled for
      estimation; the flow is returned at the input resolution.

  Returns:
    float32 flow, (H, W, 2) for one pair or (N, H, W, 2) for a batch, in
    pixels of the input resolution, channels (u, v).

  Raises:
    ValueError: wrong dtype or shape, mismatched shapes, unknown method or
      preset.
  """
  frames_a, frames_b = np.asarray(frames_a), np.asarray(frames_b)
  _check_frames(frames_a, frames_b)
  if method not in METHODS:
    raise ValueError(
      f"unknown flow method {method!r}; choose one of {sorted(METHODS)}"
    )
  single = frames_a.ndim == 3
  if single:
    frames_a, frames_b = frames_a[None], frames_b[None]
  flow_nhw2 = METHODS[method](
    np.ascontiguousarray(frames_a),
    np.ascontiguousarray(frames_b),
    preset=preset,
    min_size=min_size,
  )
  return flow_nhw2[0] if single else flow_nhw2
