"""Benchmarks: sampling latency, train steps, input pipeline, matmul peak.

  python -m ii2v_jax.bench [--data_dir data] [--out bench_results]
      [--repeats 5] [--only matmul,sample_64,sample_128,sample_64_b8,
      train_step,train_step_pixel_loss,train_step_gan,input]

`sample_<S>` is a 10-frame rollout at batch 1 and SxS; `sample_<S>_b<B>`
the same at batch B (also reported per clip).

Prints a Markdown table and writes `<out>/bench.json`. Each timed program
reports XLA's FLOP count and the achieved FLOP/s beside the machine's
measured fp32 matmul throughput.
"""

import argparse
import json
import os
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from configs import default
from ii2v_jax.data import pipeline
from ii2v_jax.models import build
from ii2v_jax.parallel import sharding
from ii2v_jax.pretrained import perceptual
from ii2v_jax.training import optim, state, train

ALL = (
  "matmul",
  "sample_64",
  "sample_128",
  "sample_64_b8",
  "train_step",
  "train_step_pixel_loss",
  "train_step_gan",
  "input",
)


def timed(fn, *args, repeats: int) -> float:
  """Median seconds of `fn(*args)` after one warm-up call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def flops_of(jitted, *args) -> float:
  cost = jitted.lower(*args).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan")))


def bench_matmul(repeats: int, n: int = 2048, dtype: str = "float32") -> dict:
  a = jax.random.normal(jax.random.key(0), (n, n), build.DTYPES[dtype])
  f = jax.jit(lambda x: x @ x)
  sec = timed(f, a, repeats=repeats)
  short = "fp32" if dtype == "float32" else "bf16"
  return {
    "seconds": sec,
    "flops": 2.0 * n**3,
    "what": f"{short} {n}x{n} matmul",
  }


def reference_config(resolution: int, batch: int, dtype: str = "float32"):
  c = default.get_config()
  c.model.dtype = dtype
  c.data.resolution = resolution
  c.train.batch_size = batch
  c.mesh.data = 1
  return c


def sample_workload(resolution: int, batch: int = 1, dtype: str = "float32"):
  """(rollout fn, its unrolled twin, args) at reference widths."""
  c = reference_config(resolution, batch, dtype)
  graphdef, params = build.split_generator(build.build_generator(c))
  from ii2v_jax.models import inference

  roll = inference.make_rollout_fn(graphdef, 10)
  unrolled = inference.make_rollout_fn(graphdef, 10, unroll=True)
  x0 = jnp.zeros((batch, resolution, resolution, 3))
  pk = jnp.zeros((batch, resolution, resolution, 2))
  return roll, unrolled, (params, x0, pk)


def bench_sample(
  resolution: int, repeats: int, batch: int = 1, dtype: str = "float32"
) -> dict:
  roll, unrolled, (params, x0, pk) = sample_workload(resolution, batch, dtype)
  out = {
    "seconds": timed(roll, params, x0, pk, repeats=repeats),
    "flops": flops_of(unrolled, params, x0, pk),
    "what": f"rollout 10 frames, batch {batch}, {resolution}x{resolution}",
  }
  if batch > 1:
    out["batch"] = batch
    out["seconds_per_clip"] = out["seconds"] / batch
    out["clips_per_second"] = batch / out["seconds"]
  if dtype != "float32":
    out["what"] += f", {dtype}"
  return out


def parse_sample(name: str) -> tuple[int, int]:
  """'sample_64' -> (64, 1); 'sample_64_b8' -> (64, 8)."""
  parts = name.split("_")[1:]
  batch = int(parts[1][1:]) if len(parts) > 1 else 1
  return int(parts[0]), batch


TRAIN_STEPS = {
  # name: (batch, perceptual layers or None for the reference set, GANs)
  "train_step": (4, None, False),
  "train_step_pixel_loss": (4, (), False),
  "train_step_gan": (10, None, True),
}


def train_workload(name: str, dtype: str = "float32"):
  """(jitted step, state, batch, vgg params) of a TRAIN_STEPS entry."""
  batch, layers, gans = TRAIN_STEPS[name]
  c = reference_config(64, batch, dtype)
  if layers is not None:
    c.loss.perceptual_layers = layers
  c.gan.enabled = gans
  c.gan.start_iteration = 1
  mesh = sharding.make_mesh(1)
  optimizers, schedules = optim.make_optimizers(c.optim, 1000, c.gan)
  graphdef, discs, _ = state.abstract_state(c, optimizers)
  params = build.initial_params(c)
  d_state = build.initial_disc_state(c)
  st = state.init_state(params, optimizers, d_state)
  step = train.compile_step(
    c, mesh, optimizers, schedules, graphdef, discs, gan_active=gans
  )
  vgg = perceptual.load_vgg16_params()
  rng = np.random.default_rng(0)
  b = {
    "video": rng.integers(0, 255, (batch, 11, 64, 64, 3), dtype=np.uint8),
    "poke": rng.normal(size=(batch, 64, 64, 2)).astype(np.float32),
  }
  return step, st, b, vgg


def bench_train_step(name: str, repeats: int, dtype: str = "float32") -> dict:
  """One full iteration at reference widths, 64x64 (see TRAIN_STEPS)."""
  batch, layers, gans = TRAIN_STEPS[name]
  step, st, b, vgg = train_workload(name, dtype)
  compiled = step.lower(st, b, vgg).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  mem = compiled.memory_analysis()
  holder = {"st": st}

  def run():
    holder["st"], m = step(holder["st"], b, vgg)
    return m["loss_dyn"]

  loss = "pixel L1 only" if layers == () else "VGG16 loss"
  what = f"train step (AE + dynamics, {loss}"
  what += ", both GANs), " if gans else "), "
  out = {
    "seconds": timed(run, repeats=repeats),
    "flops": float(cost.get("flops", float("nan"))),
    "what": what
    + f"batch {batch}, 64x64"
    + ("" if dtype == "float32" else f", {dtype}"),
  }
  if mem is not None:
    out["compiled_memory_bytes"] = int(
      mem.argument_size_in_bytes
      + mem.output_size_in_bytes
      + mem.temp_size_in_bytes
      - mem.alias_size_in_bytes
    )
  return out


def bench_input(data_dir: str, batches: int = 20) -> dict:
  c = default.get_config()
  c.data.data_dir = data_dir
  c.data.name = "articulated_pokes/64"
  it, _ = pipeline.train_iterator(c.data, local_batch=8, seed=0)
  next(it)
  t0 = time.perf_counter()
  for _ in range(batches):
    next(it)
  sec = (time.perf_counter() - t0) / batches
  return {
    "seconds": sec,
    "flops": None,
    "clips_per_second": 8 / sec,
    "what": "input pipeline (augment + poke), batch 8, 64x64, 1 process",
  }


def machine() -> dict:
  return {
    "platform": jax.devices()[0].platform,
    "device": str(jax.devices()[0].device_kind),
    "cpu": platform.processor() or platform.machine(),
    "cpu_count": os.cpu_count(),
    "jax": jax.__version__,
  }


def _gib(n) -> str:
  return "" if n is None else f"{n / 2**30:.2f} GiB"


def _time_cell(r: dict) -> str:
  if r.get("flops") is None and "clips_per_second" in r:
    return f"{r['clips_per_second']:,.1f} clips/s"  # The input pipeline.
  cell = f"{r['seconds'] * 1e3:,.1f} ms"
  if "seconds_per_clip" in r:
    cell += (
      f" ({r['seconds_per_clip'] * 1e3:,.1f} ms/clip, "
      f"{r['clips_per_second']:,.2f} clips/s)"
    )
  return cell


def table(results: dict, peak: float | None) -> str:
  rows = [
    "| benchmark | time | GFLOP | achieved GFLOP/s | of the matmul "
    "| compiled memory |",
    "|---|---|---|---|---|---|",
  ]
  for r in results.values():
    fl = r.get("flops")
    rate = fl / r["seconds"] if fl else None
    rows.append(
      f"| {r['what']} | {_time_cell(r)} | "
      f"{'' if fl is None else f'{fl / 1e9:,.1f}'} | "
      f"{'' if rate is None else f'{rate / 1e9:,.1f}'} | "
      f"{'' if rate is None or not peak else f'{100 * rate / peak:.0f} %'} | "
      f"{_gib(r.get('compiled_memory_bytes'))} |"
    )
  return "\n".join(rows)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data_dir", default="data")
  p.add_argument("--out", default="bench_results")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--only", default=",".join(ALL))
  p.add_argument(
    "--dtype",
    default="float32",
    choices=sorted(build.DTYPES),
    help="compute dtype of the models and the matmul (model.dtype)",
  )
  args = p.parse_args(argv)
  dt = args.dtype
  results = {}
  for name in args.only.split(","):
    print(f"running {name} ...", flush=True)
    if name == "matmul":
      results[name] = bench_matmul(args.repeats, dtype=dt)
    elif name.startswith("sample_"):
      res, batch = parse_sample(name)
      results[name] = bench_sample(res, args.repeats, batch, dt)
    elif name.startswith("train_step"):
      results[name] = bench_train_step(name, args.repeats, dt)
    elif name == "input":
      results[name] = bench_input(args.data_dir)
    else:
      raise SystemExit(f"unknown benchmark {name!r}; choose from {ALL}")
    # One line per finished benchmark, so an interrupted run keeps them.
    print(f"done {name}: {json.dumps(results[name])}", flush=True)
  peak = None
  if "matmul" in results:
    peak = results["matmul"]["flops"] / results["matmul"]["seconds"]
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  report = {
    "machine": machine(),
    "results": results,
    "dtype": dt,
    "fp32_matmul_flops_per_second": peak if dt == "float32" else None,
    "matmul_flops_per_second": peak,
  }
  (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
  print(json.dumps(report["machine"]))
  print(table(results, peak))
  print(f"wrote {out / 'bench.json'}")


if __name__ == "__main__":
  main()
