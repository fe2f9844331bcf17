"""Numerical parity of flow.raft with torchvision's RAFT (and the original).

Two steps in two environments; no third-party model code is stored here:

  # 1. torch side (a venv with torch, torchvision and numpy; no jax):
  /tmp/tvvenv/bin/python tools/check_raft_parity.py torch \\
      --out /tmp/raft_parity [--official_repo /tmp/RAFT]
  # 2. jax side (this repo's venv):
  .venv/bin/python tools/check_raft_parity.py jax --out /tmp/raft_parity

Step 1 builds torchvision's `raft_large` and `raft_small` in eval mode with
seeded numpy weights (`seeded_state_dict`; batch-norm running statistics
randomised too), runs them through torchvision's RAFT input transform on
smooth random frames that move by a few pixels (`moving_frames`), and
saves the state dicts (.pth and a torch-named .npz), the frames and the
flow of every iteration. With --official_repo (a checkout of
princeton-vl/RAFT) it also loads the same weights, renamed by
`flow.raft_weights.torchvision_to_official`, into the original model
(strict), runs it, and saves its state dict (`module.`-prefixed, as the
released checkpoints). Step 2 converts each file with `flow.raft_convert`
(the CLI's code path), runs `flow.raft`, prints max / mean abs flow
differences and exits 1 if a mean exceeds --tol. Its --precision
(default "highest") sets jax's conv/matmul precision: on GPUs "default"
means TF32 (torch on CPU computes in full fp32).

  /tmp/tvvenv/bin/python tools/check_raft_parity.py fixture \\
      --out tests/fixtures [--official_repo /tmp/RAFT]

writes tests/fixtures/raft_{large,small}.npz for tests/test_raft.py: key
names and shapes (weights are regenerated from the seed), frames and flows
at 128x128 with 4 iterations.
"""

import argparse
import importlib.util
import json
import pathlib
import sys
import types
import zlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
VARIANTS = ("large", "small")
_NORM = (".1.weight", ".1.bias", ".1.running_mean", ".1.running_var")


def _norm_key(key: str) -> bool:
  """torchvision norm parameters sit at index 1 of Conv2dNormActivation."""
  return key.endswith(_NORM)


def seeded_array(key: str, shape, seed: int) -> np.ndarray:
  """Deterministic weights for one torchvision key (numpy only).

  Convs ~ N(0, 1 / fan_in), biases ~ U(+-0.1), batch norm affine and
  running statistics spread around identity; the flow head's last conv
  is scaled by 0.1 so that random models predict flows of a few pixels.
  """
  rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
  shape = tuple(shape)
  if key.endswith("num_batches_tracked"):
    return np.zeros(shape, np.int64)
  if _norm_key(key):
    lo, hi = {
      "weight": (0.5, 1.5), "bias": (-0.3, 0.3),
      "running_mean": (-0.3, 0.3), "running_var": (0.5, 2.0),
    }[key.rsplit(".", 1)[1]]  # fmt: skip
    return rng.uniform(lo, hi, shape).astype(np.float32)
  # A damped last flow-head layer keeps updates near a pixel per step.
  gain = 0.1 if key.startswith("update_block.flow_head.conv2") else 1.0
  if len(shape) == 4:
    fan_in = int(np.prod(shape[1:]))
    w = rng.standard_normal(shape) * gain / np.sqrt(fan_in)
    return w.astype(np.float32)
  return (gain * rng.uniform(-0.1, 0.1, shape)).astype(np.float32)


def seeded_state_dict(keys, shapes, seed: int) -> dict[str, np.ndarray]:
  """torchvision-named weights for every (key, shape)."""
  return {k: seeded_array(k, s, seed) for k, s in zip(keys, shapes)}


def _smooth_texture(rng, h: int, w: int) -> np.ndarray:
  """(h, w, 3) float64 smooth random RGB in [0, 255] (3 octaves)."""
  out = np.zeros((h, w, 3))
  for cells, amp in ((6, 1.0), (16, 0.35), (40, 0.15)):
    coarse = rng.uniform(-1, 1, (cells + 1, cells + 1, 3))
    my, mx = _lerp_matrix(cells + 1, h), _lerp_matrix(cells + 1, w)
    out += amp * np.einsum("yi,ijc,xj->yxc", my, coarse, mx)
  return np.clip(127.5 + 90 * out, 0, 255)


def _lerp_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) linear interpolation spanning the same interval."""
  src = np.linspace(0, n_in - 1, n_out)[:, None]
  return np.maximum(0.0, 1.0 - np.abs(src - np.arange(n_in)))


def _bilinear(img_hw3: np.ndarray, ys: np.ndarray, xs: np.ndarray):
  """Samples img at float (ys, xs) grids with edge clamping."""
  h, w = img_hw3.shape[:2]
  y0 = np.clip(np.floor(ys).astype(int), 0, h - 2)
  x0 = np.clip(np.floor(xs).astype(int), 0, w - 2)
  fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
  top = img_hw3[y0, x0] * (1 - fx) + img_hw3[y0, x0 + 1] * fx
  bot = img_hw3[y0 + 1, x0] * (1 - fx) + img_hw3[y0 + 1, x0 + 1] * fx
  return top * (1 - fy) + bot * fy


def moving_frames(n: int, h: int, w: int, seed: int):
  """(n, h, w, 3) uint8 frame pairs: smooth texture, b moved by a
  per-sample translation plus a gentle rotation (a few pixels)."""
  rng = np.random.default_rng(seed)
  frames_a, frames_b = [], []
  ys, xs = np.meshgrid(np.arange(h) + 16.0, np.arange(w) + 16.0, indexing="ij")
  for _ in range(n):
    tex = _smooth_texture(rng, h + 32, w + 32)
    dx, dy = rng.uniform(-4, 4, 2)
    ang = rng.uniform(-0.03, 0.03)
    cy, cx = ys.mean(), xs.mean()
    # b(p) = a(p - motion(p)): content moves by (dx, dy) and rotates.
    sy = cy + np.cos(ang) * (ys - cy) - np.sin(ang) * (xs - cx) - dy
    sx = cx + np.sin(ang) * (ys - cy) + np.cos(ang) * (xs - cx) - dx
    frames_a.append(tex[16 : 16 + h, 16 : 16 + w])
    frames_b.append(_bilinear(tex, sy, sx))
  to_u8 = lambda f: np.round(np.stack(f)).astype(np.uint8)
  return to_u8(frames_a), to_u8(frames_b)


def load_raft_weights():
  """flow/raft_weights.py by path: `flow/__init__` needs cv2 and jax."""
  spec = importlib.util.spec_from_file_location(
    "raft_weights", ROOT / "flow" / "raft_weights.py"
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# ------------------------------------------------------------- torch side


def _nchw(frames_nhw3):
  import torch  # noqa: PLC0415

  return torch.from_numpy(np.ascontiguousarray(frames_nhw3)).permute(0, 3, 1, 2)


def _flows(preds) -> np.ndarray:
  """List of (N, 2, H, W) tensors -> (iters, N, H, W, 2) float32."""
  return np.stack([p.permute(0, 2, 3, 1).numpy() for p in preds])


def run_torchvision(variant: str, frames, iters: int, seed: int):
  """torchvision RAFT with seeded weights: (state dict, flows)."""
  import torch  # noqa: PLC0415
  from torchvision.models import optical_flow  # noqa: PLC0415
  from torchvision.transforms._presets import OpticalFlow  # noqa: PLC0415

  model = getattr(optical_flow, f"raft_{variant}")().eval()
  shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
  sd = seeded_state_dict(shapes, shapes.values(), seed)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
  img1, img2 = OpticalFlow()(_nchw(frames[0]), _nchw(frames[1]))
  with torch.no_grad():
    preds = model(img1, img2, num_flow_updates=iters)
  return sd, _flows(preds)


def _stub_scipy() -> None:
  """core/utils/utils.py imports scipy for code the model never calls."""
  try:
    import scipy.interpolate  # noqa: F401, PLC0415
  except ImportError:
    scipy = types.ModuleType("scipy")
    scipy.interpolate = types.ModuleType("scipy.interpolate")
    sys.modules["scipy"] = scipy
    sys.modules["scipy.interpolate"] = scipy.interpolate


def run_official(repo: pathlib.Path, variant: str, tv_sd, frames, iters):
  """The original RAFT with tv_sd renamed: (its state dict, flows)."""
  import torch  # noqa: PLC0415

  sys.path.insert(0, str(repo / "core"))
  _stub_scipy()
  from raft import RAFT  # noqa: PLC0415  (princeton-vl/RAFT core/raft.py)

  args = argparse.Namespace(
    small=variant == "small",
    mixed_precision=False,
    alternate_corr=False,
    dropout=0.0,
  )
  model = RAFT(args).eval()
  off = load_raft_weights().torchvision_to_official(tv_sd, variant)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in off.items()})
  # The original takes 0..255 floats and normalises inside.
  x1, x2 = (_nchw(f).float() for f in frames)
  with torch.no_grad():
    preds = model(x1, x2, iters=iters)
  state = {f"module.{k}": v.numpy() for k, v in model.state_dict().items()}
  return state, _flows(preds)


def _check_readers(rc, pth: pathlib.Path, sd: dict, official: dict | None):
  """The converter's .pth reader and the official -> torchvision rename."""
  back = rc.load_torch_state_dict(pth)
  assert back.keys() == sd.keys(), "pth keys changed"
  assert all(np.array_equal(back[k], sd[k]) for k in sd), "pth values"
  if official is not None:
    variant = rc.detect_variant(rc.strip_prefix(official), "official")
    tv = rc.official_to_torchvision(rc.strip_prefix(official), variant)
    assert tv.keys() == sd.keys(), sorted(set(tv) ^ set(sd))
    assert all(np.array_equal(tv[k], sd[k]) for k in sd), "official values"


def _save_state(out: pathlib.Path, name: str, sd: dict) -> None:
  import torch  # noqa: PLC0415

  torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()},
             out / f"{name}.pth")  # fmt: skip
  np.savez(out / f"{name}.npz", **sd)


def cmd_torch(args) -> None:
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  rc = load_raft_weights()
  frames = moving_frames(args.batch, args.height, args.width, args.seed)
  for variant in VARIANTS:
    sd, flows = run_torchvision(variant, frames, args.iters, args.seed)
    _save_state(out, f"{variant}_torchvision", sd)
    io = dict(frames_a=frames[0], frames_b=frames[1], flows_tv=flows)
    official = None
    if args.official_repo:
      repo = pathlib.Path(args.official_repo)
      official, off_flows = run_official(repo, variant, sd, frames, args.iters)
      _save_state(out, f"{variant}_official", official)
      io["flows_official"] = off_flows
      d = np.abs(off_flows - flows)
      print(f"{variant}: original vs torchvision max {d.max():.2e} "
            f"mean {d.mean():.2e}")  # fmt: skip
    _check_readers(rc, out / f"{variant}_torchvision.pth", sd, official)
    np.savez(out / f"{variant}_io.npz", **io)
    mag = np.linalg.norm(flows[-1], axis=-1)
    print(f"{variant}: flow |mean| {mag.mean():.2f} px, max {mag.max():.2f}")
  print(f"wrote {out}")


def cmd_fixture(args) -> None:
  out = pathlib.Path(args.out)
  frames = moving_frames(1, 128, 128, args.seed)
  for variant in VARIANTS:
    sd, flows = run_torchvision(variant, frames, 4, args.seed)
    fx = dict(
      seed=np.int64(args.seed),
      tv_keys=np.array(list(sd)),
      tv_shapes=np.array(json.dumps([list(v.shape) for v in sd.values()])),
      frames_a=frames[0],
      frames_b=frames[1],
      flow=flows[-1],
      flows_sub=flows[:, :, ::8, ::8],
    )
    if args.official_repo:
      repo = pathlib.Path(args.official_repo)
      official, off_flows = run_official(repo, variant, sd, frames, 4)
      fx["official_keys"] = np.array(list(official))
      shapes = [list(np.shape(v)) for v in official.values()]
      fx["official_shapes"] = np.array(json.dumps(shapes))
      print(f"{variant}: original vs torchvision max "
            f"{np.abs(off_flows - flows).max():.2e}")  # fmt: skip
    path = out / f"raft_{variant}.npz"
    np.savez_compressed(path, **fx)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


# --------------------------------------------------------------- jax side


def _run_ours(weights: pathlib.Path, out: pathlib.Path, frames, iters, prec):
  """Converts `weights` with the CLI's code path, runs flow.raft."""
  from flow import raft, raft_convert  # noqa: PLC0415

  npz = out / f"{weights.stem}.converted.npz"
  if raft_convert.main(["--torch_weights", str(weights), "--out", str(npz)]):
    raise SystemExit(f"conversion of {weights} failed")
  model = raft.load_raft(npz, precision=None if prec == "default" else prec)
  fn = raft.make_flow_fn(model, iters=iters, all_iters=True)
  return np.asarray(fn(*frames))


def jax_version() -> str:
  import jax  # noqa: PLC0415

  return jax.__version__


def jax_devices() -> str:
  import jax  # noqa: PLC0415

  return ", ".join(str(d) for d in jax.devices())


def cmd_jax(args) -> int:
  out = pathlib.Path(args.out)
  worst = 0.0
  print(f"jax {jax_version()} on {jax_devices()}, precision {args.precision}")
  print("| variant | weights | reference | max abs (px) | mean abs (px) |")
  print("|---|---|---|---|---|")
  for variant in VARIANTS:
    io = np.load(out / f"{variant}_io.npz")
    frames = (io["frames_a"], io["frames_b"])
    refs = [("torchvision", io["flows_tv"])]
    if "flows_official" in io:
      refs.append(("original", io["flows_official"]))
    for fmt, ref in refs:
      name = "torchvision" if fmt == "torchvision" else "official"
      weights = out / f"{variant}_{name}.npz"
      ours = _run_ours(weights, out, frames, len(ref), args.precision)
      d = np.abs(ours - ref)
      worst = max(worst, d[-1].mean())
      print(f"| {variant} | {name} .npz | {fmt} | {d[-1].max():.2e} | "
            f"{d[-1].mean():.2e} |")  # fmt: skip
      print(f"|   | (all {len(ref)} iterations) | | {d.max():.2e} | "
            f"{d.mean():.2e} |")  # fmt: skip
  print(f"worst mean abs difference {worst:.2e} px (tol {args.tol:.0e})")
  return int(worst > args.tol)


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  sub = p.add_subparsers(dest="cmd", required=True)
  for name in ("torch", "jax", "fixture"):
    s = sub.add_parser(name)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--official_repo", default=None)
    s.add_argument("--batch", type=int, default=2)
    s.add_argument("--height", type=int, default=128)
    s.add_argument("--width", type=int, default=192)
    s.add_argument("--iters", type=int, default=12)
    s.add_argument("--tol", type=float, default=1e-3)
    s.add_argument("--precision", default="highest",
                   choices=("default", "high", "highest"))  # fmt: skip
  args = p.parse_args()
  if args.cmd == "jax":
    sys.path.insert(0, str(ROOT))
    return cmd_jax(args)
  {"torch": cmd_torch, "fixture": cmd_fixture}[args.cmd](args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
