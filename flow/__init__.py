"""Optical flow: estimators (OpenCV DIS, ported RAFT), precompute, EPE."""

from flow.chained import compose_flows, estimate_chained_flow
from flow.estimators import (
  DIS_PRESETS,
  METHODS,
  estimate_flow,
  estimator_identity,
)
from flow.metrics import endpoint_error

__all__ = [
  "DIS_PRESETS",
  "METHODS",
  "compose_flows",
  "endpoint_error",
  "estimate_chained_flow",
  "estimate_flow",
  "estimator_identity",
]
