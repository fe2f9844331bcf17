"""EPE of the flow estimators against exact flow on synthetic clips.

  python -m datasets.articulated_pokes.evaluate_flow [--num 50] \\
      [--resolution 64] [--split test]

Flow x_0 -> x_T is estimated for each DIS preset, with and without
upscaling, directly from the pair (x_0, x_T) and chained through all frames,
and compared with `gt_flow` on foreground pixels of frame 0 (mean over clips
of the per-clip mean EPE, pixels at the clip resolution).
"""

import argparse
import time

import numpy as np

import flow
from datasets.articulated_pokes import clips

MIN_SIZES = (0, 256)  # 0 = estimate at the native resolution.


def _estimators():
  """(label, video_thw3 -> flow_hw2) for every setting compared."""
  out = [("zero flow", lambda v: np.zeros(v.shape[1:3] + (2,), np.float32))]
  for chained in (False, True):
    for preset in flow.DIS_PRESETS:
      for min_size in MIN_SIZES:
        kw = dict(preset=preset, min_size=min_size)
        label = f"{'chained' if chained else 'direct'} dis/{preset}"
        if chained:
          fn = lambda v, kw=kw: flow.estimate_chained_flow(v, **kw)
        else:
          fn = lambda v, kw=kw: flow.estimate_flow(v[0], v[-1], **kw)
        out.append((f"{label} min_size={min_size}", fn))
  return out


def evaluate(
  num: int = 50, resolution: int = 64, split: str = "test"
) -> list[tuple[str, float, float, float]]:
  """Per setting: label, EPE on foreground, EPE on moving foreground
  (|gt_flow| >= 1 px; clips without such pixels skipped), ms per clip.
  EPEs are means over clips of per-clip means, pixels at `resolution`.
  """
  data = [
    clips.make_clip(split, i, resolution=resolution, estimate_flow=False)
    for i in range(num)
  ]
  moving = [
    (c["fg_mask"] > 0) & (np.linalg.norm(c["gt_flow"], axis=-1) >= 1)
    for c in data
  ]
  rows = []
  for label, estimate in _estimators():
    start = time.perf_counter()
    estimates = [estimate(c["video"]) for c in data]
    ms = 1000 * (time.perf_counter() - start) / num
    epe = [
      flow.endpoint_error(e, c["gt_flow"], c["fg_mask"])
      for e, c in zip(estimates, data)
    ]
    epe_moving = [
      flow.endpoint_error(e, c["gt_flow"], m)
      for e, c, m in zip(estimates, data, moving)
      if m.any()
    ]
    rows.append((label, float(np.mean(epe)), float(np.mean(epe_moving)), ms))
  return rows


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num", type=int, default=50)
  parser.add_argument("--resolution", type=int, default=64)
  parser.add_argument("--split", default="test")
  args = parser.parse_args(argv)
  rows = evaluate(args.num, args.resolution, args.split)
  print(f"{args.num} {args.split} clips at {args.resolution} px, fg pixels")
  print(f"{'estimator':<40} {'EPE fg':>7} {'moving':>7} {'ms/clip':>8}")
  for label, epe, epe_moving, ms in rows:
    print(f"{label:<40} {epe:7.3f} {epe_moving:7.3f} {ms:8.1f}")


if __name__ == "__main__":
  main()
