"""Human3.6M at 64 (bs 20, ss 2) or 128 (bs 9, ss 2)."""

from configs import presets


def get_config(arg: str | None = None):
  return presets.dataset_config(
    name="human36m",
    arg=arg,
    batch_size={64: 20, 128: 9},
    subsample_step={64: 2, 128: 2},
    filter_flow=False,
  )
