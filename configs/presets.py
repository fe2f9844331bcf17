"""Shared construction of the four paper-dataset presets (REFERENCE.md §7.5).

Each preset runs at 64x64 by default and at 128x128 through the config
argument: `--config configs/iper.py:128`.
"""

import ml_collections

from configs import default


def parse_resolution(arg: str | None) -> int:
  """Reads the config argument ('', '64' or '128') as a resolution."""
  if arg in (None, ""):
    return 64
  if arg not in ("64", "128"):
    raise ValueError(f"config argument must be 64 or 128, got {arg!r}")
  return int(arg)


def dataset_config(
  *,
  name: str,
  arg: str | None,
  batch_size: dict[int, int],
  subsample_step: dict[int, int],
  filter_flow: bool,
) -> ml_collections.ConfigDict:
  """Reference-width config for a paper dataset at the chosen resolution.

  Args:
    name: TFDS builder name; the builder config is the resolution.
    arg: the config argument, '64' or '128'.
    batch_size: per-resolution batch size of the released runs.
    subsample_step: per-resolution stride between stored frames (ss).
    filter_flow: whether pokes are sampled inside a GrabCut mask.
  """
  res = parse_resolution(arg)
  c = default.get_config()
  c.data.name = f"{name}/{res}"
  c.data.resolution = res
  c.data.subsample_step = subsample_step[res]
  c.data.filter_flow = filter_flow
  c.train.batch_size = batch_size[res]
  return c
