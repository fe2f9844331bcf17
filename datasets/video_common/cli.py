"""Command-line pieces shared by the real-footage builders' build.py."""

import argparse
import dataclasses
import pathlib
import shutil
import sys
import time

import tensorflow_datasets as tfds

from datasets.video_common import clips, report
from flow import estimators, usage

FLOW_FLAGS = {
  "flow_preset": "preset",
  "flow_weights": "weights",
  "flow_variant": "variant",
  "flow_iters": "iters",
  "flow_min_size": "min_size",
}


def boolean(text: str) -> bool:
  """An argparse `type`: true / false (also 1 / 0, yes / no)."""
  word = text.strip().lower()
  if word not in ("1", "true", "yes", "0", "false", "no"):
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")
  return word in ("1", "true", "yes")


def resolution(text: str) -> int:
  """An argparse `type`: what the model takes, 16 * 2**k >= 32."""
  value = usage.at_least(32)(text)
  if value & (value - 1):
    raise argparse.ArgumentTypeError(
      f"{value} is not a power of two >= 32 (the model's sizes: 32, 64, "
      "128, ...)"
    )
  return value


def add_clip_flags(parser: argparse.ArgumentParser, **defaults) -> None:
  """Flags of a `ClipSpec`, the flow estimator and the workers.

  `defaults` overrides flag defaults (e.g. a dataset's frame_spacing).
  """
  spec = clips.ClipSpec()
  add = parser.add_argument
  add("--resolution", type=resolution, default=spec.resolution)
  add(
    "--num_frames",
    type=usage.at_least(2),
    default=spec.num_frames,
    help="T + 1",
  )
  add("--frame_spacing", type=usage.at_least(1), default=spec.frame_spacing)
  add("--clip_step", type=usage.at_least(1), help="default: num_frames - 1")
  add("--aspect", choices=("crop", "squash"), default=spec.aspect)
  add("--interpolation", choices=("linear", "area"), default="linear")
  add("--flow_size", type=usage.at_least(8), default=spec.flow_size)
  add("--flow_method", default="dis", choices=("dis", "raft"))
  add("--flow_chained", action="store_true", help="compose per-frame flows")
  add("--flow_preset", help="DIS preset (default: medium, chained: fast)")
  add("--flow_weights", help="RAFT .npz (python -m flow.raft_convert)")
  add("--flow_variant", choices=("large", "small"))
  add("--flow_iters", type=usage.at_least(1), help="RAFT iterations")
  add("--flow_min_size", type=usage.at_least(0), help="default 256")
  add("--fg_mask", choices=("none", "grabcut"), default=spec.fg_mask)
  add(
    "--mask_margin",
    type=usage.at_least(0),
    default=spec.mask_margin,
    help="poke size",
  )
  add(
    "--flow_target",
    type=usage.at_least(1),
    help="flow x_0 -> x_k (default k = T)",
  )
  add(
    "--num_workers",
    type=usage.at_least(0),
    default=0,
    help="0: in this process",
  )
  add("--no_progress", action="store_true", help="no progress bars")
  parser.set_defaults(**defaults)


def clip_spec(args: argparse.Namespace) -> clips.ClipSpec:
  """The `ClipSpec` the flags describe.

  Raises:
    usage.UsageError: a flag value it cannot take, named as typed.
  """
  options = {k: getattr(args, a) for a, k in FLOW_FLAGS.items()}
  options = {k: v for k, v in options.items() if v is not None}
  try:
    estimators.check_options(args.flow_method, options)
  except ValueError as e:  # Messages start with the option's name.
    option = str(e).split()[0].rstrip(":")
    flag = {k: a for a, k in FLOW_FLAGS.items()}.get(option, option)
    raise usage.UsageError(f"--{flag}{str(e)[len(option) :]}") from None
  if args.flow_target is not None and args.flow_target >= args.num_frames:
    raise usage.UsageError(
      f"--flow_target {args.flow_target}: must be below --num_frames "
      f"{args.num_frames} (a clip's frames are x_0 .. x_{args.num_frames - 1})"
    )
  return clips.ClipSpec(
    resolution=args.resolution,
    num_frames=args.num_frames,
    frame_spacing=args.frame_spacing,
    clip_step=args.clip_step,
    aspect=args.aspect,
    interpolation=args.interpolation,
    flow_size=args.flow_size,
    flow_method=args.flow_method,
    flow_options=options,
    flow_chained=args.flow_chained,
    fg_mask=args.fg_mask,
    mask_margin=args.mask_margin,
    flow_target=args.flow_target,
    drop_scene_cuts=getattr(args, "drop_scene_cuts", False),
  )


def clean_incomplete(builder) -> None:
  """Removes what killed builds of this config left (TFDS's
  `incomplete.*` folders beside the version folder)."""
  version = pathlib.Path(builder.data_dir)
  for leftover in sorted(version.parent.glob(f"incomplete.*_{version.name}")):
    shutil.rmtree(leftover, ignore_errors=True)
    print(f"removed {leftover}: left by an interrupted build")


def print_summary(builder, seconds: float) -> None:
  """Examples per split, disk use, time and decoded frames/s.

  The builder printed its skip report when it finished; for a reused
  build the report stored in its metadata is printed here.
  """
  info = builder.info
  counts = ", ".join(
    f"{name}: {split.num_examples}" for name, split in info.splits.items()
  )
  print(f"dataset:  {info.full_name}")
  print(f"location: {builder.data_dir}")
  print(f"examples: {counts}")
  frames = builder.report.frames_decoded
  if not frames:  # Reused: nothing was decoded now.
    stored = dict(info.metadata or {}).get("report", {})
    skipped = stored.get("skipped", [])
    print(f"reused an existing build; it skipped {len(skipped)} inputs")
    for item in skipped:
      print(f"  [{item['split']}] {item['path']}: {item['reason']}")
  print(f"disk:     {report.disk_usage(builder.data_dir) / 2**20:.1f} MiB")
  print(f"time:     {seconds:.1f} s")
  if frames:
    per_worker = frames / max(builder.report.video_seconds, 1e-9)
    print(
      f"speed:    {frames / seconds:.0f} decoded frames/s overall, "
      f"{per_worker:.0f} per worker (decode, resize, flow)"
    )


def train_command(builder, data_dir: str) -> str:
  """The launch.py line that trains on this build."""
  spec = builder.builder_config.spec
  name = f"{builder.info.name}/{builder.builder_config.name}"
  flags = f"--config.data.name={name} --config.data.data_dir={data_dir}"
  if spec.resolution != 64:
    flags += f" --config.data.resolution={spec.resolution}"
  if spec.num_frames != 11:
    flags += f" --config.data.num_frames={spec.num_frames - 1}"
  if spec.fg_mask != "none":  # Pokes inside the stored foreground.
    flags += " --config.data.filter_flow=True"
  return f"python launch.py --config configs/synthetic.py {flags}"


def build_manual(
  builder_cls,
  manual_dir: str,
  data_dir: str,
  *,
  num_workers: int = 0,
  progress: bool = True,
  overwrite: bool = False,
  **settings,
):
  """Prepares (or reuses) a `ManualVideoBuilder` build; returns the
  builder. `settings`: resolution, the dataset's OPTIONS, ClipSpec fields.
  """
  config = builder_cls.make_config(**settings)
  builder = builder_cls(
    data_dir=data_dir,
    config=config,
    num_workers=num_workers,
    progress=progress,
  )
  clean_incomplete(builder)
  mode = tfds.download.GenerateMode
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir,
      download_mode=mode.FORCE_REDOWNLOAD
      if overwrite
      else mode.REUSE_DATASET_IF_EXISTS,
    )
  )
  return builder


def manual_parser(builder_cls, doc: str, **defaults) -> argparse.ArgumentParser:
  """--manual_dir, --data_dir, --overwrite, one flag per OPTIONS entry and
  the clip flags with the dataset's defaults."""
  parser = usage.Parser(description=doc.splitlines()[0])
  parser.add_argument("--manual_dir", required=True, help="the raw data")
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--overwrite", action="store_true")
  for key, value in builder_cls.OPTIONS.items():
    kind = boolean if isinstance(value, bool) else type(value)
    parser.add_argument(f"--{key}", type=kind, default=value)
  spec = dataclasses.asdict(builder_cls.DEFAULT_SPEC)
  spec.pop("flow_options")
  add_clip_flags(parser, **(spec | defaults))
  return parser


def main_manual(builder_cls, doc: str, argv=None) -> int:
  """A build.py main: parse, build, print the summary (exit 0; 2 on bad
  usage or a missing manual directory)."""
  args = manual_parser(builder_cls, doc).parse_args(argv)
  start = time.perf_counter()
  try:
    spec = clip_spec(args)
    usage.writable_dir(args.data_dir, "--data_dir")
    settings = {k: getattr(spec, k) for k in spec.__dataclass_fields__}
    settings |= {k: getattr(args, k) for k in builder_cls.OPTIONS}
    builder = build_manual(
      builder_cls,
      args.manual_dir,
      args.data_dir,
      num_workers=args.num_workers,
      progress=not args.no_progress,
      overwrite=args.overwrite,
      **settings,
    )
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print_summary(builder, time.perf_counter() - start)
  print(f"train:    {train_command(builder, args.data_dir)}")
  return 0
