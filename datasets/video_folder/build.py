"""Builds a dataset from a folder of videos; a finished build is reused.

  python -m datasets.video_folder.build --source DIR --data_dir DATA \\
      [--resolution 64] [--split_ratio 0.8 | --split_files | --split_by_time]
      [--num_frames 11] [--frame_spacing N] [--clip_step N] [--tag NAME] \\
      [--flow_method dis|raft] [--flow_chained] [--num_workers N] \\
      [--keep_scene_cuts] [--overwrite]

Prints examples per split, every skipped file with its reason, clips left
out for spanning a scene cut, disk use, time and decoded frames/s, and the
`--config.data.name` to train on it. One video (a folder of one, or
`--source FILE`) is split by time. Exit status: 0 built (possibly with
skipped files), 2 bad usage or nothing to build.
"""

import argparse
import json
import pathlib
import sys
import time

import tensorflow_datasets as tfds

from datasets.video_common import cli
from datasets.video_folder import video_folder_dataset_builder as vfb
from flow import usage, video_io


def build(
  source: str,
  data_dir: str,
  *,
  num_workers: int = 0,
  progress: bool = True,
  overwrite: bool = False,
  **config_options,
) -> vfb.Builder:
  """Prepares (or reuses) the build of `source`; returns its builder.

  `config_options` are `vfb.make_config` keywords (resolution, split, ...).

  Raises:
    ValueError: the existing build of this config was made from another
      source directory (use another `tag` or `overwrite`), or no videos.
  """
  split = config_options.get("split", "video")
  if split == "video" and len(video_io.discover(source)) == 1:
    print(
      f"note: {source} holds one video: splitting it by time (its first "
      f"{config_options.get('split_ratio', 0.8):.0%} trains, the rest "
      "tests), as --split_by_time"
    )
    config_options["split"] = "time"
  config = vfb.make_config(source_dir=source, **config_options)
  builder = vfb.Builder(
    data_dir=data_dir,
    config=config,
    num_workers=num_workers,
    progress=progress,
  )
  built = pathlib.Path(builder.data_dir) / "metadata.json"
  if built.exists() and not overwrite:
    was = json.loads(built.read_text()).get("source_dir")
    now = str(pathlib.Path(source).resolve())
    if was != now:
      raise ValueError(
        f"{builder.data_dir} was built from {was}, not {now}: pass "
        "--tag NAME for a separate build or --overwrite to replace it"
      )
  cli.clean_incomplete(builder)
  mode = tfds.download.GenerateMode
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(
      download_mode=mode.FORCE_REDOWNLOAD
      if overwrite
      else mode.REUSE_DATASET_IF_EXISTS
    )
  )
  return builder


def ratio(text: str) -> float:
  """An argparse `type`: a fraction in [0, 1]."""
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
  if not 0.0 <= value <= 1.0:  # Also refuses nan.
    raise argparse.ArgumentTypeError(f"{text} is not in [0, 1]")
  return value


def _parser() -> argparse.ArgumentParser:
  parser = usage.Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--source", required=True, help="folder of videos")
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--tag", help="config-name prefix for this source")
  group = parser.add_mutually_exclusive_group()
  group.add_argument("--split_files", action="store_true")
  group.add_argument("--split_by_time", action="store_true")
  parser.add_argument("--split_ratio", type=ratio, default=0.8)
  parser.add_argument("--split_seed", type=usage.at_least(0), default=0)
  parser.add_argument("--overwrite", action="store_true")
  parser.add_argument(
    "--keep_scene_cuts",
    dest="drop_scene_cuts",
    action="store_false",
    help="keep clips that span a scene cut (default: leave them out)",
  )
  cli.add_clip_flags(parser)
  return parser


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  split = "files" if args.split_files else "video"
  split = "time" if args.split_by_time else split
  start = time.perf_counter()
  try:
    spec = cli.clip_spec(args)
    usage.writable_dir(args.data_dir, "--data_dir")
    fields = spec.__dataclass_fields__
    spec_options = {k: getattr(spec, k) for k in fields if k != "resolution"}
    builder = build(
      args.source,
      args.data_dir,
      num_workers=args.num_workers,
      progress=not args.no_progress,
      overwrite=args.overwrite,
      resolution=args.resolution,
      tag=args.tag,
      split=split,
      split_ratio=args.split_ratio,
      split_seed=args.split_seed,
      **spec_options,
    )
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  cli.print_summary(builder, time.perf_counter() - start)
  print(f"train:    {cli.train_command(builder, args.data_dir)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
