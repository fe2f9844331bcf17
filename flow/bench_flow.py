"""Flow throughput: RAFT (large, small; random weights) and OpenCV DIS.

  python -m flow.bench_flow [--size 256] [--iters 12] [--batch 4]
      [--repeats 3] [--only raft_large,raft_small,dis_ultrafast,dis_fast,
      dis_medium] [--precision default|high|highest]

Prints the hardware and a Markdown table of pairs/s at size x size. RAFT
runs jitted on the default jax device, `batch` pairs per call, and also
reports XLA's FLOP count per pair and the compile time; DIS runs through
`flow.estimate_flow` on the CPU (one pair at a time, as it does).
"""

import argparse
import os
import platform
import time

import cv2
import jax
import numpy as np

from flow import estimators, raft

ALL = ("raft_large", "raft_small", "dis_ultrafast", "dis_fast", "dis_medium")


def moving_pairs(n: int, size: int, seed: int = 0):
  """(n, size, size, 3) uint8 smooth textures and copies shifted 3 px."""
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(0, 255, (n, size // 8, size // 8, 3)).astype(np.uint8)
  a = np.stack(
    [cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in coarse]
  )
  return a, np.roll(a, (3, -2), axis=(1, 2))


def _median_seconds(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def bench_raft(variant, size, iters, batch, repeats, precision) -> dict:
  """Pairs/s of jitted RAFT; also GFLOP per pair and compile seconds."""
  model = raft.init_raft(variant, precision=precision)
  a, b = moving_pairs(batch, size)
  fn = raft.make_flow_fn(model, iters=iters)
  t0 = time.perf_counter()
  jax.block_until_ready(fn(a, b))
  compile_s = time.perf_counter() - t0
  sec = _median_seconds(lambda: fn(a, b), repeats)
  return {
    "pairs_per_s": batch / sec,
    "gflop_per_pair": raft_gflop(model, a, b, iters) / batch,
    "compile_s": compile_s,
  }


def raft_gflop(model, a, b, iters: int) -> float:
  """XLA's FLOP count of one call, in GFLOP (nan if unknown).

  The refinement loop is unrolled for the count: XLA counts a while
  loop's body once, whatever its trip count.
  """
  from flax import nnx  # noqa: PLC0415

  graphdef, state = nnx.split(model)
  opts = (("iters", iters), ("unroll", True))
  lowered = raft._apply.lower(graphdef, state, a, b, opts=opts)
  cost = lowered.compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get("flops", float("nan"))) / 1e9


def bench_dis(preset: str, size: int, batch: int, repeats: int) -> dict:
  """Pairs/s of `flow.estimate_flow` with a DIS preset (CPU)."""
  a, b = moving_pairs(batch, size)
  run = lambda: estimators.estimate_flow(a, b, preset=preset, min_size=size)
  run()
  sec = _median_seconds(run, repeats)
  return {"pairs_per_s": batch / sec}


def hardware() -> str:
  devices = ", ".join(str(d) for d in jax.devices())
  cpu = platform.processor() or platform.machine()
  return (
    f"jax {jax.__version__} devices: {devices}; CPU: {os.cpu_count()} x {cpu}"
  )


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--size", type=int, default=256)
  p.add_argument("--iters", type=int, default=12)
  p.add_argument("--batch", type=int, default=4)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--only", default=",".join(ALL))
  p.add_argument("--precision", default="default",
                 choices=("default", "high", "highest"))  # fmt: skip
  args = p.parse_args(argv)
  precision = None if args.precision == "default" else args.precision
  print(hardware())
  print(f"\n{args.size}x{args.size}, RAFT {args.iters} iterations, "
        f"batch {args.batch}, precision {args.precision}\n")  # fmt: skip
  print("| method | pairs/s | GFLOP/pair | compile (s) |")
  print("|---|---|---|---|")
  for name in args.only.split(","):
    if name.startswith("raft_"):
      r = bench_raft(name[5:], args.size, args.iters, args.batch,
                     args.repeats, precision)  # fmt: skip
      print(f"| {name} | {r['pairs_per_s']:.2f} | "
            f"{r['gflop_per_pair']:.1f} | {r['compile_s']:.1f} |")  # fmt: skip
    elif name.startswith("dis_"):
      r = bench_dis(name[4:], args.size, args.batch, args.repeats)
      print(f"| {name} (CPU) | {r['pairs_per_s']:.1f} | | |")
    else:
      raise SystemExit(f"unknown benchmark {name!r}; choose from {ALL}")


if __name__ == "__main__":
  main()
