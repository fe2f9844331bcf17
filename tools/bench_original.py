"""Side-by-side CPU benchmark: the original PyTorch II2V code and ours.

Two environments, like tools/check_parity.py; no original code is stored
here, it is imported from a checkout at run time. Run from the repository
root under the torch venv; our side runs as a subprocess under this repo's
venv (`python -m ii2v_jax.bench`, whose bench.json is read back):

  # once: a torch venv (CPU wheel) and a checkout of the original
  python3 -m venv /tmp/torchvenv
  /tmp/torchvenv/bin/pip install torch==2.13.0+cpu numpy
  git clone https://github.com/CompVis/interactive-image2video-synthesis \\
      /tmp/ii2v_orig
  # the benchmark (both sides, one table):
  /tmp/torchvenv/bin/python tools/bench_original.py \\
      --original_repo /tmp/ii2v_orig --repeats 3 [--jax_python .venv/bin/python]

Workloads (the names of `python -m ii2v_jax.bench --only`): matmul (fp32
NxN), sample_64 / sample_128 (a 10-frame rollout at batch 1, no grad, eval
mode), sample_64_b8 (batch 8, also per clip), train_step_pixel_loss (one
training iteration at batch 4, 64x64: the AE step and the dynamics step of
the original's experiments/fixed_length_model.py with its VGG loss replaced
by the pixel L1 term of that loss, plus the latent loss; Adam as there).
Reference widths (config/fixed_length_model.yaml), random weights, random
inputs, median of --repeats after one warm-up call. The ratio is original
time / our time: above 1 means ours is faster.
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import check_parity  # noqa: E402  (ARCHITECTURE, make_inputs)

ALL = (
  "matmul",
  "sample_64",
  "sample_128",
  "sample_64_b8",
  "sample_64_b32",
  "train_step_pixel_loss",
)
FRAMES = 10
TRAIN_BATCH = 4


def timed(fn, repeats: int) -> float:
  """Median seconds of `fn()` after one warm-up call (torch on CPU runs
  synchronously)."""
  fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def parse_sample(name: str) -> tuple[int, int]:
  """'sample_64' -> (64, 1); 'sample_64_b8' -> (64, 8)."""
  parts = name.split("_")[1:]
  return int(parts[0]), int(parts[1][1:]) if len(parts) > 1 else 1


def build_original(res: int):
  from models.latent_flow_net import SkipSequenceModel

  arch = check_parity.ARCHITECTURE
  return SkipSequenceModel(spatial_size=(res, res), config=arch)


def original_matmul(torch, repeats: int, n: int) -> dict:
  a = torch.randn(n, n)
  sec = timed(lambda: a @ a, repeats)
  return {"seconds": sec, "flops": 2.0 * n**3, "what": f"fp32 {n}x{n} matmul"}


def original_sample(torch, res: int, batch: int, repeats: int) -> dict:
  model = build_original(res).eval()
  x0, poke = check_parity.make_inputs(res, batch, seed=res)
  x0, poke = torch.from_numpy(x0), torch.from_numpy(poke)

  def run():
    with torch.no_grad():
      return model(x0, x0, poke, FRAMES)[0]

  out = {
    "seconds": timed(run, repeats),
    "what": f"rollout {FRAMES} frames, batch {batch}, {res}x{res}",
  }
  if batch > 1:
    out["batch"] = batch
    out["seconds_per_clip"] = out["seconds"] / batch
  return out


def pixel_term(torch):
  """The "input" term of the original's vgg_loss: mean |.| of the
  ImageNet-normalised difference of two images in [-1, 1]."""
  std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
  return lambda target, pred: torch.mean(torch.abs((target - pred) / 2 / std))


def original_train_step(torch, repeats: int) -> dict:
  """One iteration of the original's train_step (no GANs, VGG loss ->
  pixel term): AE step on {shape_enc, dec}, then the dynamics step on
  {dynamics_enc, fusion_block, dec} with 5 * L_rec + 0.1 * L_lat."""
  net = build_original(64).train()
  groups = lambda *names: [
    {"params": getattr(net, n).parameters(), "name": n} for n in names
  ]
  opt_dis = torch.optim.Adam(groups("shape_enc", "dec"), lr=1e-4)
  opt_dyn = torch.optim.Adam(
    groups("dynamics_enc", "fusion_block", "dec"), lr=1e-4
  )
  rng = np.random.default_rng(0)
  video = rng.uniform(-1, 1, (TRAIN_BATCH, FRAMES + 1, 3, 64, 64))
  video = torch.from_numpy(video.astype(np.float32))
  poke = rng.normal(size=(TRAIN_BATCH, 2, 64, 64)).astype(np.float32)
  poke = torch.from_numpy(poke)
  pixel, mse = pixel_term(torch), torch.nn.MSELoss()

  def run():
    x_t, x_seq = video[:, 0], video[:, 1:]
    x_hat, *_ = net(x_seq[:, -1], x_t, poke, len=0)
    loss_dis = pixel(x_t, x_hat)
    opt_dis.zero_grad()
    loss_dis.backward()
    opt_dis.step()
    seq_rec, _, sigmas_hat, _ = net(x_t, x_t, poke, len=FRAMES)
    rec, lat = [], []
    for n in range(FRAMES):
      _, s_n, *_ = net(x_seq[:, n], x_seq[:, n], poke, len=0)
      rec.append(pixel(x_seq[:, n], seq_rec[:, n]))
      pairs = zip(sigmas_hat[n], s_n)
      lat.append(torch.stack([mse(a, b) for a, b in pairs]).mean())
    loss = 5 * torch.stack(rec).mean() + 0.1 * torch.stack(lat).mean()
    opt_dyn.zero_grad()
    loss.backward()
    opt_dyn.step()
    return loss.detach().item()

  return {
    "seconds": timed(run, repeats),
    "what": "train step (AE + dynamics, pixel L1 + latent loss), "
    f"batch {TRAIN_BATCH}, 64x64",
  }


def run_original(args, names) -> dict:
  import torch

  torch.manual_seed(0)
  torch.set_num_threads(args.threads)
  sys.path.insert(0, str(pathlib.Path(args.original_repo).resolve()))
  out = {}
  for name in names:
    print(f"original: {name} ...", file=sys.stderr, flush=True)
    if name == "matmul":
      out[name] = original_matmul(torch, args.repeats, args.matmul_n)
    elif name.startswith("sample_"):
      res, batch = parse_sample(name)
      out[name] = original_sample(torch, res, batch, args.repeats)
    elif name == "train_step_pixel_loss":
      out[name] = original_train_step(torch, args.repeats)
    else:
      raise SystemExit(f"unknown workload {name!r}; choose from {ALL}")
    print(f"original {name}: {json.dumps(out[name])}", file=sys.stderr)
  return out


def run_ours(args, names) -> dict:
  """`python -m ii2v_jax.bench` of this repo's venv; its bench.json."""
  with tempfile.TemporaryDirectory() as tmp:
    cmd = [args.jax_python, "-m", "ii2v_jax.bench", "--only", ",".join(names)]
    cmd += ["--repeats", str(args.repeats), "--out", tmp]
    print("ours: " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=sys.stderr)
    return json.loads((pathlib.Path(tmp) / "bench.json").read_text())


def cpu_details() -> dict:
  info = {"cpu": platform.processor() or platform.machine()}
  flags = set()
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      key, _, value = line.partition(":")
      if key.strip() == "model name":
        info["cpu"] = value.strip()
      elif key.strip() == "flags":
        flags = set(value.split())
  except OSError:
    pass
  wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni")
  wanted += ("amx_tile", "amx_bf16", "amx_int8")
  info["isa"] = " ".join(f for f in wanted if f in flags)
  info["cores"] = os.cpu_count()
  info["load_average_1m"] = os.getloadavg()[0]
  return info


def machine(torch_threads: int, ours: dict | None) -> dict:
  info = cpu_details()
  try:
    import torch

    info["torch"] = torch.__version__
    info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    info["torch_threads"] = torch_threads
  except ImportError:
    pass
  if ours:
    info["jax"] = ours["machine"]["jax"]
  for var in ("XLA_FLAGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    if os.environ.get(var):
      info[var] = os.environ[var]
  info["date_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
  return info


def _fmt(r: dict | None, peak: bool = False) -> str:
  if r is None:
    return ""
  if peak:
    return f"{r['flops'] / r['seconds'] / 1e9:,.0f} GFLOP/s"
  text = f"{r['seconds']:,.3f} s"
  if "seconds_per_clip" in r:
    text += f" ({r['seconds_per_clip']:.3f} s/clip)"
  return text


def table(original: dict, ours: dict, names) -> str:
  rows = ["| work | original | ours | ratio |", "|---|---|---|---|"]
  for name in names:
    a, b = original.get(name), ours.get(name)
    what = (a or b)["what"]
    ratio = ""
    if a and b and name == "matmul":
      ratio = f"{a['seconds'] / b['seconds']:.2f}x (peak)"
    elif a and b:
      ratio = f"**{a['seconds'] / b['seconds']:.2f}x**"
    peak = name == "matmul"
    rows.append(f"| {what} | {_fmt(a, peak)} | {_fmt(b, peak)} | {ratio} |")
  return "\n".join(rows)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--original_repo", help="checkout of the original code")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--only", default=",".join(ALL))
  p.add_argument("--threads", type=int, default=os.cpu_count())
  p.add_argument("--matmul_n", type=int, default=2048)
  p.add_argument("--jax_python", default=str(ROOT / ".venv" / "bin" / "python"))
  p.add_argument("--skip_original", action="store_true")
  p.add_argument("--skip_ours", action="store_true")
  p.add_argument("--out", help="write both sides' figures as JSON here")
  args = p.parse_args(argv)
  names = args.only.split(",")
  unknown = [n for n in names if n not in ALL]
  if unknown:
    p.error(f"unknown workloads {unknown}; choose from {ALL}")
  load_at_start = os.getloadavg()[0]
  original = {}
  if not args.skip_original:
    if not args.original_repo:
      p.error("--original_repo is needed unless --skip_original")
    original = run_original(args, names)
  report = run_ours(args, names) if not args.skip_ours else None
  ours = report["results"] if report else {}
  info = machine(args.threads, report)
  info["load_average_1m_at_start"] = load_at_start
  print(json.dumps(info))
  print(table(original, ours, names))
  print(
    "ratio = original time / our time (above 1: ours is faster); "
    f"median of {args.repeats} after a warm-up"
  )
  if args.out:
    doc = {"machine": info, "original": original, "ours": ours}
    pathlib.Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
