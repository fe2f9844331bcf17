"""Builds the articulated-pokes dataset; a finished build is reused.

  python -m datasets.articulated_pokes.build --data_dir data \\
      [--resolution 64] [--num_train N --num_test M] [--num_frames F]
"""

import argparse
import pathlib
import time

from datasets.articulated_pokes import articulated_pokes_dataset_builder as apb
from datasets.articulated_pokes import clips


def build(
  data_dir: str,
  resolution: int = 64,
  *,
  num_train: int = apb.NUM_TRAIN,
  num_test: int = apb.NUM_TEST,
  num_frames: int = clips.NUM_FRAMES,
) -> apb.Builder:
  """Prepares (or reuses) the build; returns its builder."""
  config = apb.make_config(
    resolution, num_frames=num_frames, num_train=num_train, num_test=num_test
  )
  builder = apb.Builder(data_dir=data_dir, config=config)
  builder.download_and_prepare()
  return builder


def disk_usage(path: str) -> int:
  """Bytes of all files under `path`."""
  files = pathlib.Path(path).rglob("*")
  return sum(f.stat().st_size for f in files if f.is_file())


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--resolution", type=int, default=64)
  parser.add_argument("--num_train", type=int, default=apb.NUM_TRAIN)
  parser.add_argument("--num_test", type=int, default=apb.NUM_TEST)
  parser.add_argument("--num_frames", type=int, default=clips.NUM_FRAMES)
  args = parser.parse_args(argv)
  start = time.perf_counter()
  builder = build(
    args.data_dir,
    args.resolution,
    num_train=args.num_train,
    num_test=args.num_test,
    num_frames=args.num_frames,
  )
  seconds = time.perf_counter() - start
  splits = builder.info.splits
  counts = ", ".join(f"{n}: {splits[n].num_examples}" for n in splits)
  print(f"dataset:  {builder.info.full_name}")
  print(f"location: {builder.data_dir}")
  print(f"examples: {counts}")
  print(f"disk:     {disk_usage(builder.data_dir) / 2**20:.1f} MiB")
  print(f"time:     {seconds:.1f} s")


if __name__ == "__main__":
  main()
