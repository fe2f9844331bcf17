"""Builds a dataset from a folder of videos; a finished build is reused.

  python -m datasets.video_folder.build --source DIR --data_dir DATA \\
      [--resolution 64] [--split_ratio 0.8 | --split_files | --split_by_time]
      [--num_frames 11] [--frame_spacing N] [--clip_step N] [--tag NAME] \\
      [--flow_method dis|raft] [--flow_chained] [--num_workers N] \\
      [--overwrite]

Prints examples per split, every skipped file with its reason, disk use,
time and decoded frames/s, and the `--config.data.name` to train on it.
Exit status: 0 built (possibly with skipped files), 2 bad usage.
"""

import argparse
import json
import pathlib
import sys
import time

import tensorflow_datasets as tfds

from datasets.video_common import cli
from datasets.video_folder import video_folder_dataset_builder as vfb


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
  mode = tfds.download.GenerateMode
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(
      download_mode=mode.FORCE_REDOWNLOAD
      if overwrite
      else mode.REUSE_DATASET_IF_EXISTS
    )
  )
  return builder


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--source", required=True, help="folder of videos")
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--tag", help="config-name prefix for this source")
  group = parser.add_mutually_exclusive_group()
  group.add_argument("--split_files", action="store_true")
  group.add_argument("--split_by_time", action="store_true")
  parser.add_argument("--split_ratio", type=float, default=0.8)
  parser.add_argument("--split_seed", type=int, default=0)
  parser.add_argument("--overwrite", action="store_true")
  cli.add_clip_flags(parser)
  return parser


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  split = "files" if args.split_files else "video"
  split = "time" if args.split_by_time else split
  spec = cli.clip_spec(args)
  spec_options = {
    k: getattr(spec, k) for k in spec.__dataclass_fields__ if k != "resolution"
  }
  start = time.perf_counter()
  try:
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
