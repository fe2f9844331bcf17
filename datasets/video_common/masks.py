"""Foreground masks for poke sampling (REFERENCE.md 8.4, `filter_flow`).

The reference runs OpenCV GrabCut on the start frame at S with a fixed
rectangle: x in [S/5, S/5 + 3S/5), y in [ps, S - ps) (ps: poke size),
5 iterations, foreground = labels {GC_FGD, GC_PR_FGD}. It does so on the
augmented frame at load time; we store the mask of the plain frame and the
loader warps it with the frame (`ii2v_jax.data.augment`), which costs no GrabCut
per training step.
"""

import cv2
import numpy as np

METHODS = ("none", "grabcut")


def grabcut_mask(frame_hw3: np.ndarray, margin: int = 3) -> np.ndarray:
  """(S, S) uint8 foreground mask (1 = foreground) of an RGB frame.

  Args:
    frame_hw3: (S, S, 3) uint8 RGB start frame at the stored size.
    margin: rows left out above and below the rectangle (the poke size).

  Returns:
    The GrabCut mask; all ones where GrabCut cannot run (degenerate
    rectangle, flat image), i.e. "foreground unknown".
  """
  h, w = frame_hw3.shape[:2]
  x0, y0 = w // 5, margin
  rect = (x0, y0, 3 * w // 5, h - 2 * margin)
  mask = np.zeros((h, w), np.uint8)
  bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
  bgr = np.ascontiguousarray(frame_hw3[..., ::-1])
  try:
    cv2.grabCut(bgr, mask, rect, bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
  except cv2.error:  # E.g. a one-colour frame: no model to fit.
    return np.ones((h, w), np.uint8)
  fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
  return fg.astype(np.uint8)


def foreground(frame_hw3: np.ndarray, method: str, margin: int) -> np.ndarray:
  """The mask `method` gives for a start frame ("none": all ones)."""
  if method == "grabcut":
    return grabcut_mask(frame_hw3, margin)
  if method == "none":
    return np.ones(frame_hw3.shape[:2], np.uint8)
  raise ValueError(f"mask method must be one of {METHODS}, got {method!r}")
