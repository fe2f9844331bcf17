"""EPE of the flow estimators against exact flow on synthetic clips.

  python -m datasets.articulated_pokes.evaluate_flow [--num 50] \\
      [--resolution 64] [--split test] [--data_dir data] \\
      [--dis_min_sizes 0,256] [--raft_random large,small] \\
      [--raft_weights raft.npz] [--raft_chained] [--no_dis]

Flow x_0 -> x_T is estimated for each DIS preset, with and without
upscaling, directly from the pair (x_0, x_T) and chained through all frames,
and compared with `gt_flow`: on all pixels, on foreground pixels of frame 0,
and on moving foreground pixels (|gt_flow| >= 1 px); means over clips of the
per-clip mean EPE, pixels at the clip resolution. With --data_dir the clips
are read from that build (the same clips: generation is a pure function of
the id) and its stored `flow` / `pair_flow` are scored too. RAFT runs with
converted weights (--raft_weights) or random-init ones (--raft_random: a
plumbing check, not an accuracy figure); frames are upscaled to min_size 256
as DIS's are. Throughput is pairs/s after one untimed warm-up clip (RAFT's
compilation), on whatever device jax uses.
"""

import argparse
import dataclasses
import pathlib
import tempfile
import time
from collections.abc import Callable

import numpy as np

import flow
from datasets.articulated_pokes import clips

MIN_SIZES = (0, 256)  # 0 = estimate at the native resolution.
MOVING_PX = 1.0


@dataclasses.dataclass(frozen=True)
class Estimator:
  """A labelled `clip -> (H, W, 2) flow x_0 -> x_T`, pairs it estimates."""

  label: str
  fn: Callable[[dict], np.ndarray]
  pairs_per_clip: int  # 0: nothing estimated (stored or constant flow).


def _pair_or_chain(label, chained, num_frames, **kw) -> Estimator:
  """Direct (x_0, x_T) or chained estimate with `estimate_flow` keywords."""
  if chained:
    fn = lambda c: flow.estimate_chained_flow(c["video"], **kw)
    return Estimator(f"chained {label}", fn, num_frames - 1)
  fn = lambda c: flow.estimate_flow(c["video"][0], c["video"][-1], **kw)
  return Estimator(f"direct {label}", fn, 1)


def dis_estimators(num_frames: int, min_sizes=MIN_SIZES) -> list[Estimator]:
  """Zero flow, then every DIS preset x min_size, direct and chained."""
  zero = lambda c: np.zeros(c["video"].shape[1:3] + (2,), np.float32)
  out = [Estimator("zero flow", zero, 0)]
  for chained in (False, True):
    for preset in flow.DIS_PRESETS:
      for min_size in min_sizes:
        label = f"dis/{preset} min_size={min_size}"
        kw = dict(preset=preset, min_size=min_size)
        out.append(_pair_or_chain(label, chained, num_frames, **kw))
  return out


def random_raft_weights(variant: str, path, seed: int = 0) -> pathlib.Path:
  """Writes random-init RAFT weights as a converted .npz; returns path."""
  from flow import raft  # noqa: PLC0415 (jax only when RAFT is used)

  raft.save_raft(raft.init_raft(variant, seed=seed), path)
  return pathlib.Path(path)


def raft_estimators(
  weights: dict[str, str], num_frames: int, chained: bool = False
) -> list[Estimator]:
  """Direct (and chained) RAFT, 12 iterations, per label -> .npz path."""
  out = []
  for label, path in weights.items():
    kw = dict(method="raft", weights=str(path), iters=12, min_size=256)
    for chain in (False, True) if chained else (False,):
      out.append(_pair_or_chain(label, chain, num_frames, **kw))
  return out


def stored_estimators() -> list[Estimator]:
  """The flow features a build stores (estimated at build time)."""
  return [
    Estimator("stored `flow` (build)", lambda c: c["flow"], 0),
    Estimator("stored `pair_flow` (build)", lambda c: c["pair_flow"], 0),
  ]


def load_clips(
  num: int, resolution: int, split: str, data_dir: str | None = None
) -> list[dict]:
  """The first `num` clips of `split`: read from a build, or generated."""
  if data_dir is None:
    return [
      clips.make_clip(split, i, resolution=resolution, estimate_flow=False)
      for i in range(num)
    ]
  from datasets.articulated_pokes import (  # noqa: PLC0415 (TFDS)
    articulated_pokes_dataset_builder as apb,
  )

  builder = apb.Builder(data_dir=data_dir, config=apb.make_config(resolution))
  source = builder.as_data_source()[split]
  return [source[i] for i in range(min(num, len(source)))]


def _masks(clip: dict) -> tuple[np.ndarray, np.ndarray]:
  """(foreground, moving foreground) masks of frame 0, (H, W) bool."""
  fg = np.asarray(clip["fg_mask"]) > 0
  speed = np.linalg.norm(np.asarray(clip["gt_flow"]), axis=-1)
  return fg, fg & (speed >= MOVING_PX)


def score(estimator: Estimator, data: list[dict]) -> dict:
  """EPE (all, fg, moving fg; px) and speed of one estimator on `data`."""
  estimator.fn(data[0])  # Warm-up: compilation stays out of the timing.
  start = time.perf_counter()
  estimates = [estimator.fn(c) for c in data]
  seconds = time.perf_counter() - start
  epe = {"all": [], "fg": [], "moving": []}
  for est, clip in zip(estimates, data):
    gt = np.asarray(clip["gt_flow"])
    fg, moving = _masks(clip)
    epe["all"].append(flow.endpoint_error(est, gt))
    epe["fg"].append(flow.endpoint_error(est, gt, fg))
    if moving.any():
      epe["moving"].append(flow.endpoint_error(est, gt, moving))
  pairs = estimator.pairs_per_clip * len(data)
  return {
    "label": estimator.label,
    **{f"epe_{k}": float(np.mean(v)) for k, v in epe.items()},
    "pairs_per_s": pairs / seconds if pairs else float("nan"),
    "ms_per_clip": 1000 * seconds / len(data),
  }


def markdown_table(rows: list[dict]) -> str:
  lines = [
    "| estimator | EPE all | EPE fg | EPE moving fg | pairs/s | ms/clip |",
    "|---|---|---|---|---|---|",
  ]
  for r in rows:
    speed = "-" if np.isnan(r["pairs_per_s"]) else f"{r['pairs_per_s']:.1f}"
    lines.append(
      f"| {r['label']} | {r['epe_all']:.3f} | {r['epe_fg']:.3f} | "
      f"{r['epe_moving']:.3f} | {speed} | {r['ms_per_clip']:.1f} |"
    )
  return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--num", type=int, default=50)
  p.add_argument("--resolution", type=int, default=64)
  p.add_argument("--split", default="test")
  p.add_argument("--data_dir", help="read clips from this build")
  p.add_argument("--dis_min_sizes", default="0,256")
  p.add_argument("--no_dis", action="store_true", help="skip the DIS grid")
  p.add_argument("--raft_random", default="", help="e.g. large,small")
  p.add_argument("--raft_weights", help="converted RAFT .npz")
  p.add_argument(
    "--raft_chained",
    action="store_true",
    help="also chain RAFT through every frame (T pairs)",
  )
  return p


def _estimators(args, num_frames: int, tmp: str) -> list[Estimator]:
  """Every estimator the flags ask for (random RAFT weights into tmp)."""
  min_sizes = [int(s) for s in args.dis_min_sizes.split(",")]
  out = [] if args.no_dis else dis_estimators(num_frames, min_sizes)
  if args.data_dir:
    out += stored_estimators()
  weights = {}
  for variant in filter(None, args.raft_random.split(",")):
    path = random_raft_weights(variant, pathlib.Path(tmp) / f"{variant}.npz")
    weights[f"raft-{variant} random-init"] = path
  if args.raft_weights:
    weights[f"raft {pathlib.Path(args.raft_weights).name}"] = args.raft_weights
  return out + raft_estimators(weights, num_frames, args.raft_chained)


def main(argv: list[str] | None = None) -> None:
  args = _parser().parse_args(argv)
  data = load_clips(args.num, args.resolution, args.split, args.data_dir)
  s = args.resolution
  big = s * -(-256 // s)  # The integer upscale of min_size=256.
  print(
    f"{len(data)} {args.split} clips at {s} px "
    f"({args.data_dir or 'generated'}); min_size=256 estimates at "
    f"{big}x{big}; EPE in px at {s} px"
  )
  if args.raft_random or args.raft_weights:
    import jax  # noqa: PLC0415

    print(f"RAFT on {jax.devices()[0].device_kind} ({jax.default_backend()})")
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for estimator in _estimators(args, len(data[0]["video"]), tmp):
      rows.append(score(estimator, data))
      print(f"  done: {estimator.label}", flush=True)
  print(markdown_table(rows))


if __name__ == "__main__":
  main()
