"""Optical flow: estimators (classical DIS; room for ported networks)."""

from flow.chained import compose_flows, estimate_chained_flow
from flow.estimators import DIS_PRESETS, METHODS, estimate_flow
from flow.metrics import endpoint_error

__all__ = [
  "DIS_PRESETS",
  "METHODS",
  "compose_flows",
  "endpoint_error",
  "estimate_chained_flow",
  "estimate_flow",
]
