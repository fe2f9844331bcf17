"""Builds the articulated-pokes dataset; a finished build is reused.

  python -m datasets.articulated_pokes.build --data_dir data \\
      [--resolution 64] [--num_train N --num_test M] [--num_frames F] \\
      [--flow_method dis|raft] [--flow_preset P] \\
      [--flow_weights raft.npz --flow_variant large|small --flow_iters 12]

Without --flow_* flags the stored flow is the tuned DIS default; any
--flow_* flag makes a separate build (config name "..._flow-<method>-<hash>").
"""

import argparse
import pathlib
import sys
import time

from datasets.articulated_pokes import articulated_pokes_dataset_builder as apb
from datasets.articulated_pokes import clips
from datasets.video_common import cli
from flow import estimators, usage


def build(
  data_dir: str,
  resolution: int = 64,
  *,
  num_train: int = apb.NUM_TRAIN,
  num_test: int = apb.NUM_TEST,
  num_frames: int = clips.NUM_FRAMES,
  flow_method: str = "dis",
  flow_options: dict | None = None,
) -> apb.Builder:
  """Prepares (or reuses) the build; returns its builder."""
  config = apb.make_config(
    resolution,
    num_frames=num_frames,
    num_train=num_train,
    num_test=num_test,
    flow_method=flow_method,
    flow_options=flow_options,
  )
  builder = apb.Builder(data_dir=data_dir, config=config)
  builder.download_and_prepare()
  return builder


def disk_usage(path: str) -> int:
  """Bytes of all files under `path`."""
  files = pathlib.Path(path).rglob("*")
  return sum(f.stat().st_size for f in files if f.is_file())


def flow_options(args: argparse.Namespace) -> dict:
  """`estimate_flow` options from the --flow_* flags given (none: {})."""
  names = {
    "flow_preset": "preset",
    "flow_weights": "weights",
    "flow_variant": "variant",
    "flow_iters": "iters",
    "flow_min_size": "min_size",
  }
  given = {k: getattr(args, a) for a, k in names.items()}
  return {k: v for k, v in given.items() if v is not None}


def _parser() -> argparse.ArgumentParser:
  parser = usage.Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--resolution", type=cli.resolution, default=64)
  count = usage.at_least(1)
  parser.add_argument("--num_train", type=count, default=apb.NUM_TRAIN)
  parser.add_argument("--num_test", type=count, default=apb.NUM_TEST)
  parser.add_argument(
    "--num_frames", type=usage.at_least(2), default=clips.NUM_FRAMES
  )
  parser.add_argument("--flow_method", default="dis", choices=("dis", "raft"))
  parser.add_argument("--flow_preset", help="DIS preset (default: tuned)")
  parser.add_argument("--flow_weights", help="RAFT .npz (flow.raft_convert)")
  parser.add_argument("--flow_variant", choices=("large", "small"))
  parser.add_argument(
    "--flow_iters", type=usage.at_least(1), help="RAFT iterations"
  )
  parser.add_argument(
    "--flow_min_size", type=usage.at_least(0), help="default 256"
  )
  return parser


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  options = flow_options(args)
  try:
    estimators.check_options(args.flow_method, options)
    usage.writable_dir(args.data_dir, "--data_dir")
  except ValueError as e:  # Option errors start with the option's name.
    text = str(e) if str(e).startswith("--") else f"--flow_{e}"
    print(f"error: {text}", file=sys.stderr)
    return 2
  start = time.perf_counter()
  builder = build(
    args.data_dir,
    args.resolution,
    num_train=args.num_train,
    num_test=args.num_test,
    num_frames=args.num_frames,
    flow_method=args.flow_method,
    flow_options=options,
  )
  seconds = time.perf_counter() - start
  splits = builder.info.splits
  counts = ", ".join(f"{n}: {splits[n].num_examples}" for n in splits)
  print(f"dataset:  {builder.info.full_name}")
  print(f"location: {builder.data_dir}")
  print(f"examples: {counts}")
  print(f"disk:     {disk_usage(builder.data_dir) / 2**20:.1f} MiB")
  print(f"time:     {seconds:.1f} s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
