"""Flow accuracy metrics."""

import numpy as np


def endpoint_error(
  flow_a: np.ndarray, flow_b: np.ndarray, mask: np.ndarray | None = None
) -> float:
  """Mean endpoint error (Euclidean distance of flow vectors).

  Args:
    flow_a: (..., H, W, 2) flow in pixels.
    flow_b: flow of the same shape.
    mask: optional (..., H, W) bool or {0, 1} array broadcastable to the
      flow's leading shape; only pixels where it is nonzero count.

  Returns:
    Mean EPE in pixels over the selected pixels.

  Raises:
    ValueError: shapes differ, the last axis is not 2, or the mask selects
      no pixel.
  """
  flow_a = np.asarray(flow_a, dtype=np.float64)
  flow_b = np.asarray(flow_b, dtype=np.float64)
  if flow_a.shape != flow_b.shape or flow_a.shape[-1:] != (2,):
    raise ValueError(
      f"flows must share a (..., H, W, 2) shape: {flow_a.shape} vs "
      f"{flow_b.shape}"
    )
  epe = np.linalg.norm(flow_a - flow_b, axis=-1)
  if mask is None:
    return float(epe.mean())
  select = np.broadcast_to(np.asarray(mask) != 0, epe.shape)
  if not select.any():
    raise ValueError("mask selects no pixel")
  return float(epe[select].mean())
