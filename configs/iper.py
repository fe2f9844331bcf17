"""iPER at 64 (bs 8, ss 1) or 128 (bs 9, ss 1); pokes inside GrabCut masks."""

from configs import presets


def get_config(arg: str | None = None):
  return presets.dataset_config(
    name="iper",
    arg=arg,
    batch_size={64: 8, 128: 9},
    subsample_step={64: 1, 128: 1},
    filter_flow=True,
  )
