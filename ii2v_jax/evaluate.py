"""Evaluate a trained workdir on seeded test pokes (REFERENCE.md §9).

  python -m ii2v_jax.evaluate --workdir runs/synthetic [--split test]
      [--num_clips 1000] [--seed 42]

Every metric compares the predicted frames x_1..x_T with the ground truth
(x_0 excluded). The copy-the-first-frame baseline is evaluated alongside.
Writes `<workdir>/eval.json` and `<workdir>/eval.md`.
"""

import argparse
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

import flow
from ii2v_jax import checkpoint, data, inference, lpips, train_step


def poke_displacement(video_thw3, rc) -> np.ndarray:
  """Displacement (u, v) at pixel rc=(row, col) from frame 0 to the last.

  Chained DIS through every frame, as the dataset's stored flow (which the
  ground-truth poke is read from) is estimated.
  """
  f = flow.estimate_chained_flow(video_thw3)
  return f[rc[0], rc[1]]


def batch_metrics(lpips_fn, rollout, params, batch) -> dict:
  """Per-clip metrics of the model and of the copy-first-frame baseline."""
  video = train_step.to_unit_range(jnp.asarray(batch["video"]))
  x0, xs = video[:, 0], video[:, 1:]
  pred = rollout(params, x0, jnp.asarray(batch["poke"]))
  copy = jnp.broadcast_to(x0[:, None], xs.shape)
  out = {"lpips": lpips_fn(xs, pred), "lpips_baseline": lpips_fn(xs, copy)}
  pred_u8 = np.asarray(inference.to_uint8(pred))
  first = batch["video"][:, :1]
  rcs, want = batch["poke_rc"], batch["poke_uv"]
  copies = np.repeat(first, pred_u8.shape[1] + 1, axis=1)
  got = np.stack(
    [
      poke_displacement(np.concatenate([f, p]), rc)
      for f, p, rc in zip(first, pred_u8, rcs)
    ]
  )
  base = np.stack([poke_displacement(c, rc) for c, rc in zip(copies, rcs)])
  out["poke_epe"] = np.linalg.norm(got - want, axis=-1)
  out["poke_epe_baseline"] = np.linalg.norm(base - want, axis=-1)
  return {k: np.asarray(v) for k, v in out.items()}


def make_lpips_fn():
  params = lpips.load_lpips_params("vgg")

  @jax.jit
  def per_frame(a_bthwc, b_bthwc):
    b, t = a_bthwc.shape[:2]
    flat = lambda v: v.reshape((b * t,) + v.shape[2:])
    d = lpips.lpips_distance(params, flat(a_bthwc), flat(b_bthwc), net="vgg")
    return d.reshape(b, t)

  return per_frame


def evaluate(workdir: str, *, split=None, num_clips=None, seed=None) -> dict:
  """Runs the protocol; returns and writes the summary."""
  config, graphdef, params, step = inference.load_model(workdir)
  ev = config.eval
  n, load = data.eval_examples(
    config.data,
    num_clips=num_clips or ev.num_clips,
    seed=ev.seed if seed is None else seed,
    split=split,
  )
  rollout = inference.make_rollout_fn(graphdef, config.data.num_frames)
  lpips_fn = make_lpips_fn()
  parts = []
  for start in tqdm.trange(0, n, ev.batch_size, desc="evaluate", unit="batch"):
    idx = range(start, min(n, start + ev.batch_size))
    parts.append(
      batch_metrics(
        lpips_fn, rollout, params, data.stack([load(i) for i in idx])
      )
    )
  per_clip = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  summary = summarize(
    per_clip, step=step, split=split or config.data.test_split
  )
  write_report(workdir, summary)
  return summary


def summarize(per_clip: dict, *, step: int, split: str) -> dict:
  out = {
    "step": int(step),
    "split": split,
    "num_clips": len(per_clip["poke_epe"]),
  }
  for k, v in per_clip.items():
    out[k] = float(np.mean(v))
    if v.ndim == 2:
      out[f"{k}_per_frame"] = [float(x) for x in v.mean(axis=0)]
  return out


def write_report(workdir: str, summary: dict) -> None:
  path = pathlib.Path(workdir)
  (path / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
  rows = [
    "| metric | model | copy first frame |",
    "|---|---|---|",
    f"| LPIPS (VGG, mean over frames) | {summary['lpips']:.4f} | "
    f"{summary['lpips_baseline']:.4f} |",
    f"| poke EPE (px at S) | {summary['poke_epe']:.3f} | "
    f"{summary['poke_epe_baseline']:.3f} |",
  ]
  head = (
    f"Evaluation at step {summary['step']}, split '{summary['split']}', "
    f"{summary['num_clips']} clips.\n\n"
  )
  (path / "eval.md").write_text(head + "\n".join(rows) + "\n")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", default="runs/synthetic")
  p.add_argument("--split", default=None)
  p.add_argument("--num_clips", type=int, default=None)
  p.add_argument("--seed", type=int, default=None)
  args = p.parse_args(argv)
  try:
    summary = evaluate(
      args.workdir, split=args.split, num_clips=args.num_clips, seed=args.seed
    )
  except (checkpoint.CheckpointError, data.DataError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print((pathlib.Path(args.workdir) / "eval.md").read_text())
  print(f"wrote {pathlib.Path(args.workdir) / 'eval.json'}")
  return 0 if summary else 1


if __name__ == "__main__":
  sys.exit(main())
