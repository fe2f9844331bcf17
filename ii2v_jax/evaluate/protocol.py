"""Evaluate a trained workdir with the reference protocol (REFERENCE.md §9).

  python -m ii2v_jax.evaluate --workdir runs/synthetic [--split test]
      [--num_clips 1000] [--seed 42] [--metrics lpips,ssim,psnr,fvd,poke]
      [--fvd_clips N]

Seeded test clips with one simulated poke each; the model rolls out T
frames and every metric compares x_1..x_T with the ground truth (x_0
excluded), for the model and for the copy-the-first-frame baseline: LPIPS
(VGG), SSIM and PSNR in the standard per-frame and the reference's
batch-level (PL 0.9) flavours, FVD, the poke end-point error and, on
datasets that store joint tracks, the joint-tracking error. Batches are
split over all devices. Writes `<workdir>/eval.json`, `eval.md` and
`eval_curves.png` (`eval_report`).
"""

import argparse
import contextlib
import dataclasses
import json
import pathlib
import sys
import time

import jax
import numpy as np
import tqdm

from configs import default
from ii2v_jax.data import pipeline
from ii2v_jax.evaluate import batch_metrics, report
from ii2v_jax.io import checkpoint
from ii2v_jax.models import inference
from ii2v_jax.parallel import sharding
from ii2v_jax.pretrained import i3d, lpips


@dataclasses.dataclass
class _Run:
  """What one evaluation carries from batch to batch."""

  fns: batch_metrics.BatchMetrics
  rollout: object
  params: object
  nets: dict
  per_clip: dict = dataclasses.field(default_factory=dict)
  per_batch: dict = dataclasses.field(default_factory=dict)
  weights: list = dataclasses.field(default_factory=list)
  fvd: batch_metrics.FvdSets | None = None
  timings: dict = dataclasses.field(default_factory=dict)

  @contextlib.contextmanager
  def timed(self, key: str):
    start = time.perf_counter()
    yield
    self.timings[key] = self.timings.get(key, 0.0) + (
      time.perf_counter() - start
    )

  def add(self, store: dict, values: dict, count: int | None = None):
    """Appends each value (its first `count` rows, if given)."""
    for k, v in values.items():
      v = np.asarray(v)
      store.setdefault(k, []).append(v if count is None else v[:count])


def _available(which, example: dict) -> tuple[str, ...]:
  """Drops the joint error on datasets without joint tracks."""
  return tuple(m for m in which if m != "joints" or "joints" in example)


def _load_nets(which, replicated) -> dict:
  nets = {"lpips": None, "i3d": None}
  if "lpips" in which:
    nets["lpips"] = lpips.load_lpips_params("vgg")
  if "fvd" in which:
    nets["i3d"] = i3d.default_params()
  return jax.device_put(nets, replicated)


def _image_metrics(run: _Run, video, pred, count: int) -> None:
  which, fns = run.fns.which, run.fns
  if any(m in which for m in batch_metrics.IMAGE_METRICS):
    out = jax.device_get(fns.frame_fn(run.nets["lpips"], video, pred))
    run.add(run.per_clip, out, count)
  if "ssim" in which or "psnr" in which:
    run.add(run.per_batch, jax.device_get(fns.pl09_fn(video, pred, count)))
    run.weights.append(count)


def _eval_batch(run: _Run, batch: dict) -> None:
  """Every metric of one batch of `count` clips into `run`."""
  count, fns, which = len(batch["video"]), run.fns, run.fns.which
  padded = batch_metrics.pad_batch(batch, fns.padded)
  video = jax.device_put(padded["video"], fns.batch_sharding)
  pokes = jax.device_put(padded["poke"], fns.batch_sharding)
  with run.timed("rollout_s"):
    pred = jax.block_until_ready(run.rollout(run.params, video, pokes))
  with run.timed("image_metrics_s"):
    _image_metrics(run, video, pred, count)
  if not any(m in which for m in ("poke", "joints", "fvd")):
    return
  pred_u8 = np.asarray(fns.to_uint8(pred))[:count]
  if "poke" in which or "joints" in which:
    with run.timed("flow_s"):
      run.add(
        run.per_clip, batch_metrics.flow_errors(batch, pred_u8, which=which)
      )
  if run.fvd is not None:
    with run.timed("i3d_s"):
      run.fvd.add(batch["video"], pred_u8)


def _start(config, rollout, params, which, n_fvd: int) -> _Run:
  """Compiles nothing yet: shardings, jitted programs, networks, FVD sets."""
  mesh = sharding.make_mesh(config.mesh.data)
  fns = batch_metrics.BatchMetrics(
    mesh, which, batch_metrics.padded_batch_size(config.eval.batch_size, mesh)
  )
  params = jax.device_put(params, fns.replicated)
  nets = _load_nets(which, fns.replicated)
  run = _Run(fns, fns.sharded_rollout(rollout), params, nets)
  if "fvd" in which:
    if n_fvd < 2:
      raise ValueError(
        f"FVD needs >= 2 clips, got {n_fvd} (raise --num_clips or "
        "--fvd_clips, or leave fvd out of --metrics)"
      )
    run.fvd = batch_metrics.FvdSets(fns, nets["i3d"], n_fvd)
  return run


def _finish(run: _Run, meta: dict, start_time: float) -> dict:
  """FVD from the collected features, timings, and the summary."""
  if run.fvd is not None:
    with run.timed("fvd_distance_s"):
      meta.update(run.fvd.distances())
    # Per clip through I3D, padding included (3 passes: real, model, copy).
    padded = run.fns.padded
    passes = 3 * -(-run.fvd.limit // padded) * padded
    run.timings["i3d_s_per_clip"] = run.timings["i3d_s"] / passes
  run.timings["total_s"] = time.perf_counter() - start_time
  meta["devices"] = run.fns.mesh.shape["data"]
  meta["timings"] = {k: round(v, 3) for k, v in run.timings.items()}
  per_clip = {k: np.concatenate(v) for k, v in run.per_clip.items()}
  return report.summarize(per_clip, run.per_batch, run.weights, meta)


def run_protocol(
  config,
  rollout,
  params,
  *,
  split=None,
  num_clips=None,
  seed=None,
  metrics=None,
  fvd_clips=None,
  progress=True,
) -> dict:
  """Evaluates `rollout(params, x0, poke) -> (B, T, S, S, 3)` in [-1, 1].

  Arguments left None come from `config.eval` (`num_clips`, `seed`,
  `metrics`, `fvd_clips`; -1 = all clips). Returns the summary without
  the checkpoint step (see `report.summarize`).
  """
  ev, start_time = config.eval, time.perf_counter()
  seed = ev.seed if seed is None else seed
  num_clips = ev.num_clips if num_clips is None else num_clips
  check_counts(num_clips, fvd_clips)
  n, load = pipeline.eval_examples(
    config.data,
    num_clips=num_clips if num_clips > 0 else 2**62,  # -1: all clips.
    seed=seed,
    split=split,
  )
  which = _available(
    batch_metrics.parse_metrics(metrics or ev.metrics), load(0)
  )
  fvd_clips = ev.fvd_clips if fvd_clips is None else fvd_clips
  run = _start(
    config, rollout, params, which, n if fvd_clips < 0 else min(fvd_clips, n)
  )
  bar = tqdm.trange(
    0, n, ev.batch_size, desc="evaluate", unit="batch", disable=not progress
  )
  for start in bar:
    with run.timed("load_s"):
      stop = min(n, start + ev.batch_size)
      batch = pipeline.stack([load(i) for i in range(start, stop)])
    _eval_batch(run, batch)
  meta = {
    "split": split or config.data.test_split,
    "num_clips": n,
    "seed": seed,
    "batch_size": ev.batch_size,
    "metrics": list(which),
  }
  return _finish(run, meta, start_time)


class UsageError(ValueError):
  """A bad command-line value; the message names the flag."""


def check_counts(num_clips, fvd_clips) -> None:
  """--num_clips >= 1 (or -1 for all); --fvd_clips >= 2 or -1 (all)."""
  if num_clips is not None and num_clips < 1 and num_clips != -1:
    raise UsageError(
      f"--num_clips must be at least 1 (or -1 for all clips), got {num_clips}"
    )
  if fvd_clips is not None and fvd_clips < 2 and fvd_clips != -1:
    raise UsageError(
      f"--fvd_clips must be at least 2 (FVD compares two sets' statistics) "
      f"or -1 for all clips, got {fvd_clips}"
    )


def _split_names(data_dir: str, name: str) -> list[str]:
  """The splits a prepared dataset holds (from its dataset_info.json)."""
  info = pipeline.dataset_dir(data_dir, name) / "dataset_info.json"
  try:
    return [s["name"] for s in json.loads(info.read_text())["splits"]]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise pipeline.DataError(f"cannot read {info}: {e}") from e


def check_args(workdir: str, split, metrics, num_clips, fvd_clips) -> None:
  """Checks the command line before any checkpoint is read or file written.

  Raises UsageError naming the flag, CheckpointError or DataError.
  """
  check_counts(num_clips, fvd_clips)
  if metrics is not None:
    try:
      batch_metrics.parse_metrics(metrics)
    except ValueError as e:
      raise UsageError(f"--metrics {metrics!r}: {e}") from e
  config = checkpoint.read_config(workdir)
  if split is not None:
    splits = _split_names(config.data.data_dir, config.data.name)
    if split not in splits:
      raise UsageError(
        f"--split {split!r} is not a split of dataset "
        f"'{config.data.name}'; choose from {', '.join(sorted(splits))}"
      )


def with_eval_defaults(config):
  """A copy whose `eval` has every declared key (older workdirs lack some)."""
  config = config.copy_and_resolve_references()
  ev = default.get_config().eval
  ev.update(config.eval)
  config.eval = ev
  return config


def evaluate(workdir: str, **kwargs) -> dict:
  """Runs the protocol on the newest checkpoint; writes and returns it.

  Keyword arguments as for `run_protocol` (split, num_clips, seed,
  metrics, fvd_clips).
  """
  config, graphdef, params, step = checkpoint.load_model(workdir)
  config = with_eval_defaults(config)
  rollout = inference.make_rollout_fn(graphdef, config.data.num_frames)
  summary = {"step": int(step)}
  summary.update(run_protocol(config, rollout, params, **kwargs))
  report.write_report(workdir, summary)
  return summary


class _OneLineParser(argparse.ArgumentParser):
  """argparse whose usage errors are one line (no usage block), exit 2."""

  def error(self, message):
    self.exit(2, f"error: {message} (see --help)\n")


def main(argv=None) -> int:
  p = _OneLineParser(
    prog="python -m ii2v_jax.evaluate", description=__doc__.splitlines()[0]
  )
  p.add_argument("--workdir", default="runs/synthetic")
  p.add_argument(
    "--split", default=None, help="dataset split (default: the test split)"
  )
  p.add_argument(
    "--num_clips",
    type=int,
    default=None,
    help="test clips (>= 1; -1 = all; default config.eval.num_clips)",
  )
  p.add_argument("--seed", type=int, default=None)
  p.add_argument(
    "--metrics",
    default=None,
    help=f"comma-separated subset of {','.join(batch_metrics.ALL_METRICS)}",
  )
  p.add_argument(
    "--fvd_clips", type=int, default=None, help="FVD set size (>= 2; -1 = all)"
  )
  args = p.parse_args(argv)
  kwargs = {k: v for k, v in vars(args).items() if k != "workdir"}
  try:
    check_args(
      args.workdir, args.split, args.metrics, args.num_clips, args.fvd_clips
    )
    summary = evaluate(args.workdir, **kwargs)
  except (checkpoint.CheckpointError, pipeline.DataError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except OSError as e:  # An unwritable workdir, a full disk.
    print(f"error: cannot write the report: {e}", file=sys.stderr)
    return 2
  out = pathlib.Path(args.workdir)
  print((out / "eval.md").read_text())
  print(
    f"wrote {out / 'eval.json'}, {out / 'eval.md'}, {out / 'eval_curves.png'}"
  )
  return 0 if summary else 1
