"""TaiChi-HD at 64 or 128 (bs 9, ss 2; the 64 run's values are not known,
so it uses the shipped config's batch 10); pokes inside GrabCut masks."""

from configs import presets


def get_config(arg: str | None = None):
  return presets.dataset_config(
    name="taichi",
    arg=arg,
    batch_size={64: 10, 128: 9},
    subsample_step={64: 2, 128: 2},
    filter_flow=True,
  )
