"""Poking Plants at 64 (bs 10, ss 1) or 128 (bs 9, ss 2)."""

from configs import presets


def get_config(arg: str | None = None):
  return presets.dataset_config(
    name="plants",
    arg=arg,
    batch_size={64: 10, 128: 9},
    subsample_step={64: 1, 128: 2},
    filter_flow=False,
  )
