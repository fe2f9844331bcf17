"""Numerical parity of our port with the original PyTorch II2V code.

Two steps in two environments; no original code is stored here, it is
imported from a checkout at run time:

  # 1. torch side (a venv with torch==2.13.0 and numpy, no jax needed):
  python tools/check_parity.py torch --original_repo /tmp/ii2v_orig \\
      --out /tmp/ii2v_parity
  # 2. jax side (this repo's venv):
  python tools/check_parity.py jax --out /tmp/ii2v_parity

Step 1 builds the original `SkipSequenceModel` at reference widths with
torch's default random init, rolls out T frames from a random image in
[-1, 1] and a poke (in float32, and in float64 for the noise floor), runs
both original discriminators on the result (eval mode, then one train-mode
pass), and saves the state_dicts (ignite-style `*_checkpoint_<it>.pt` files
and .npz exports), the inputs and outputs. It also builds a
torchvision-layout VGG19 `features` stack with random weights and runs the
original perceptual loss through it (torchvision is replaced by that stack;
`utils.general`'s unused third-party imports are stubbed). Step 2 converts
with `ii2v_jax.convert` (the CLI's code path) into a workdir, loads it with
`checkpoint.load_model` and restores the full train state as training does,
and compares. It exits 1 when a max abs difference exceeds --tol (relative
to the largest magnitude where that exceeds 1).

  python tools/check_parity.py fixture --original_repo /tmp/ii2v_orig \
      --out tests/fixtures/original_rollout_s32.npz

writes the small fixture of tests/test_convert.py: the original model at
S=32, nf_deep=64 with seeded numpy weights (`seeded_state_dict`), 3 frames.
"""

import argparse
import json
import pathlib
import sys
import types

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M")
VGG19_CFG += (512,) * 4 + ("M",) + (512,) * 4 + ("M",)
VGG_TAPS = {3: "relu1_2", 8: "relu2_2", 13: "relu3_2", 22: "relu4_2"}
VGG_TAPS[31] = "relu5_2"
# `architecture` of the original's config/fixed_length_model.yaml.
ARCHITECTURE = dict(
  nf_first=32,
  nf_deep=512,
  min_spatial_size=16,
  zeroflow_baseline=False,
  disentanglement=False,
  n_gru_layers=2,
  poke_and_img=False,
  resnet_down=True,
  use_skip_model=True,
  poke_every_t=True,
  spectnorm_decoder=False,
  poke_scale=False,
)
ITERATION = 1000  # Step the fake ignite checkpoint claims.


def make_inputs(resolution: int, batch: int, seed: int):
  """x0 (B,3,S,S) uniform in [-1, 1]; poke (B,2,S,S) with a 3x3 patch each."""
  rng = np.random.default_rng(seed)
  x0 = rng.uniform(-1, 1, (batch, 3, resolution, resolution))
  poke = np.zeros((batch, 2, resolution, resolution))
  for b in range(batch):
    r, c = rng.integers(1, resolution - 1, 2)
    poke[b, :, r - 1 : r + 2, c - 1 : c + 2] = rng.uniform(-8, 8, 2)[
      :, None, None
    ]
  return x0.astype(np.float32), poke.astype(np.float32)


def seeded_state_dict(shapes: dict, seed: int) -> dict:
  """Reproducible weights without torch's RNG (tests/test_convert.py uses
  it to rebuild the fixture's weights)."""
  rng = np.random.default_rng(seed)
  out = {}
  for name in sorted(shapes):
    shape = tuple(shapes[name])
    scale = 0.1 if len(shape) == 1 else 1 / np.sqrt(np.prod(shape[1:]))
    out[name] = (rng.uniform(-1, 1, shape) * scale).astype(np.float32)
  return out


# --- torch side --------------------------------------------------------------


def fixture_step(args) -> None:
  import torch

  sys.path.insert(0, str(pathlib.Path(args.original_repo).resolve()))
  from models.latent_flow_net import SkipSequenceModel

  res, frames, seed = 32, 3, 7
  model = SkipSequenceModel((res, res), dict(ARCHITECTURE, nf_deep=64))
  shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
  sd = seeded_state_dict(shapes, seed)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
  model.eval()
  x0, poke = make_inputs(res, 2, seed)
  with torch.no_grad():
    xt, pt = torch.from_numpy(x0), torch.from_numpy(poke)
    video, _, _, _ = model(xt, xt, pt, frames)
    recon, _, _, _ = model(xt, xt, pt, 0)
  checksum = sum(float(np.abs(v).astype(np.float64).sum()) for v in sd.values())
  np.savez_compressed(
    args.out,
    x0_nchw=x0,
    poke_nchw=poke,
    video_ntchw=video.numpy(),
    recon_nchw=recon.numpy(),
    seed=seed,
    num_tensors=len(sd),
    weight_checksum=checksum,
  )
  print(f"wrote {args.out}: {len(sd)} tensors, checksum {checksum:.6f}")


def _stub(name: str, **attrs) -> None:
  module = types.ModuleType(name)
  module.__dict__.update(attrs)
  sys.modules[name] = module


def _vgg19_features(torch):
  """torchvision's VGG19 `features` layout, kaiming-normal init."""
  nn, layers, c_in = torch.nn, [], 3
  for v in VGG19_CFG:
    if v == "M":
      layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
      continue
    conv = nn.Conv2d(c_in, v, kernel_size=3, padding=1)
    # Default init shrinks activations ~2.5x per layer; this keeps them O(1).
    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
    nn.init.uniform_(conv.bias, -0.1, 0.1)
    layers += [conv, nn.ReLU(inplace=True)]
    c_in = v
  return nn.Sequential(*layers)


def torch_step(args) -> None:
  import torch

  torch.manual_seed(args.seed)
  torch.set_num_threads(args.threads)
  sys.path.insert(0, str(pathlib.Path(args.original_repo).resolve()))
  sys.path.append(str(ROOT))
  from models.latent_flow_net import SkipSequenceModel

  from ii2v_jax.convert import torch_checkpoint

  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  for res in args.resolutions:
    model = SkipSequenceModel(spatial_size=(res, res), config=ARCHITECTURE)
    model.eval()
    x0, poke = make_inputs(res, args.batch, args.seed + res)
    with torch.no_grad():
      xt, pt = torch.from_numpy(x0), torch.from_numpy(poke)
      video, delta, _, _ = model(xt, xt, pt, args.frames)
      recon, _, _, _ = model(xt, xt, pt, 0)
    pt_path = out / f"gen{res}" / f"reg_ckpt_checkpoint_{ITERATION}.pt"
    pt_path.parent.mkdir(exist_ok=True)
    torch.save({"model": model.state_dict()}, pt_path)
    sd = torch_checkpoint.load_state_dict(pt_path)  # Our reader, real torch.
    torch_checkpoint.save_npz(sd, out / f"gen{res}" / "state_dict.npz")
    # float64 rollout of the same model: the float32 noise floor.
    with torch.no_grad():
      x64, p64 = xt.double(), pt.double()
      video64, _, _, _ = model.double()(x64, x64, p64, args.frames)
    np.savez(
      out / f"gen{res}" / "io.npz",
      x0=x0,
      poke=poke,
      video=video.numpy(),
      delta=delta.numpy(),
      recon=recon.numpy(),
      video_f64=video64.numpy(),
    )
    n = sum(v.size for v in sd.values())
    print(
      f"torch {res}px: {len(sd)} tensors, {n:,} params, video {video.shape}"
    )
    _torch_disc_step(torch, args, out / f"gen{res}", video)
  _torch_vgg_step(torch, args, out)


def _stub_general_imports() -> None:
  for name in ("yaml", "coloredlogs", "cv2"):  # Imported, unused here.
    if name not in sys.modules:
      _stub(name)


def _torch_disc_step(torch, args, out: pathlib.Path, video) -> None:
  """Both discriminators on the generated clip: eval mode (stored u, v),
  then one train-mode pass (one power iteration)."""
  _stub_general_imports()
  from models.discriminator import PatchDiscriminator, resnet

  patch_cfg = dict(pixel_dynamics=False, deep_layers=0, n_layers=3)
  patch = PatchDiscriminator(dict(patch_cfg, bce_loss=False)).eval()
  res, frames = video.shape[-1], video.shape[1]
  temp_cfg = dict(bce_loss=False, patch_temp_disc=False)
  temp = resnet(config=temp_cfg, spatial_size=res, sequence_length=frames)
  temp.eval()
  from ii2v_jax.convert import torch_checkpoint

  for name, module in (("disc_patch", patch), ("disc_temp", temp)):
    path = out / f"{name}_checkpoint_{ITERATION}.pt"
    torch.save({"model": module.state_dict()}, path)
    sd = torch_checkpoint.load_state_dict(path)
    torch_checkpoint.save_npz(sd, out / f"{name}_state_dict.npz")
  clip = video.transpose(1, 2).contiguous()  # (B, 3, T, S, S)
  frames_b = video[:, 0]
  results = {}
  with torch.no_grad():
    for mode in ("eval", "train"):
      patch.train(mode == "train")
      temp.train(mode == "train")
      p_logits, p_feats = patch(frames_b)
      t_logits, t_feats = temp(clip)
      results[f"patch_{mode}"] = p_logits.numpy()
      results[f"temporal_{mode}"] = t_logits.numpy()
      if mode == "eval":
        for i, f in enumerate(p_feats):
          results[f"patch_feat{i}"] = f.numpy()
        for i, f in enumerate(t_feats):
          results[f"temporal_feat{i}"] = f.numpy()
  np.savez(out / "disc_io.npz", **results)


def _torch_vgg_step(torch, args, out: pathlib.Path) -> None:
  features = _vgg19_features(torch).eval()
  model = types.SimpleNamespace(features=features, eval=lambda: None)
  _stub("torchvision")
  _stub("torchvision.models", vgg19=lambda pretrained=False: model)
  _stub_general_imports()
  from utils.losses import PerceptualVGG, vgg_loss_agg

  sd = {f"features.{k}": v for k, v in features.state_dict().items()}
  torch.save(sd, out / "vgg19_random.pth")
  sys.path.append(str(ROOT))
  from ii2v_jax.convert import torch_checkpoint

  torch_checkpoint.save_npz(
    torch_checkpoint.load_state_dict(out / "vgg19_random.pth"),
    out / "vgg19_state_dict.npz",
  )
  rng = np.random.default_rng(args.seed)
  target = rng.uniform(-1, 1, (args.batch, 3, 64, 64)).astype(np.float32)
  pred = np.clip(target + rng.normal(0, 0.3, target.shape), -1, 1)
  pred = pred.astype(np.float32)
  vgg = PerceptualVGG()
  with torch.no_grad():
    t, p = torch.from_numpy(target), torch.from_numpy(pred)
    feats = {k: v.numpy() for k, v in vgg(t).items()}
    loss = float(vgg_loss_agg(vgg, t, p))
  np.savez(
    out / "vgg19_io.npz",
    target=target,
    pred=pred,
    loss=np.float32(loss),
    **{f"feat_{name}": feats[name] for name in VGG_TAPS.values()},
  )
  print(f"torch VGG19: loss {loss:.6f}")


# --- jax side ----------------------------------------------------------------


def _stats(ours, theirs) -> dict:
  d = np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64))
  scale = float(np.abs(theirs).max())
  return {
    "max_abs": float(d.max()),
    "mean_abs": float(d.mean()),
    "scale": scale,
  }


def jax_step(args) -> int:
  sys.path.insert(0, str(ROOT))
  import jax.numpy as jnp
  from flax import nnx

  from ii2v_jax.convert import converter
  from ii2v_jax.io import checkpoint
  from ii2v_jax.models import build, inference
  from ii2v_jax.pretrained import perceptual

  out, results = pathlib.Path(args.out), {}
  for res in args.resolutions:
    src = out / f"gen{res}"
    pt = src / f"reg_ckpt_checkpoint_{ITERATION}.pt"
    workdir = out / f"workdir{res}"
    config = f"{ROOT / 'configs' / 'iper.py'}:{res}"
    argv = ["--workdir", str(workdir), "--config", config, "--force"]
    try:
      import torch  # noqa: F401

      # The CLI finds the disc_*_checkpoint_<it>.pt files beside it.
      argv += ["--torch_checkpoint", str(pt)]
    except ImportError:  # The .npz exports of the same files.
      argv += ["--torch_checkpoint", str(src / "state_dict.npz")]
      argv += ["--step", str(ITERATION)]
      for flag, name in (("patch", "patch"), ("temporal", "temp")):
        path = src / f"disc_{name}_state_dict.npz"
        if path.exists():
          argv += [f"--disc_{flag}_checkpoint", str(path)]
    if converter.main(argv):
      return 1
    cfg, graphdef, params, step = checkpoint.load_model(str(workdir))
    assert step == ITERATION, step
    if args.dtype != "float32":  # Same float32 weights, other compute dtype.
      cfg.model.dtype = args.dtype
      graphdef = build.abstract_generator(cfg)[0]
    io = np.load(src / "io.npz")
    x0 = jnp.asarray(io["x0"].transpose(0, 2, 3, 1))
    poke = jnp.asarray(io["poke"].transpose(0, 2, 3, 1))
    frames = io["video"].shape[1]
    video = inference.make_rollout_fn(graphdef, frames)(params, x0, poke)
    model = nnx.merge(graphdef, params)
    recon, _ = model.autoencode(x0)
    delta = model.encode_poke(poke)
    to_nthwc = lambda a: a.transpose(0, 1, 3, 4, 2)
    results[f"generator{res}"] = {
      "video": _stats(video, to_nthwc(io["video"])),
      # The float32 noise floor: ours and torch's float32 rollouts, each
      # against torch's float64 rollout of the same weights.
      "video_vs_f64": _stats(video, to_nthwc(io["video_f64"])),
      "torch_vs_f64": _stats(io["video"], io["video_f64"]),
      "recon": _stats(recon, io["recon"].transpose(0, 2, 3, 1)),
      "delta": _stats(delta, io["delta"].transpose(0, 2, 3, 1)),
    }
    if (src / "disc_io.npz").exists():
      results[f"discriminators{res}"] = _jax_discs(workdir, cfg, src, io)
  if (out / "vgg19_io.npz").exists():
    vgg = _jax_vgg(out, converter, perceptual, jnp)
    if vgg is not None:
      results["vgg19"] = vgg
  name = (
    "parity.json" if args.dtype == "float32" else f"parity_{args.dtype}.json"
  )
  (out / name).write_text(json.dumps(results, indent=2))
  failed = []
  for name, parts in results.items():
    for part, s in parts.items():
      # Absolute for outputs within [-1, 1] (the frames); relative to the
      # largest magnitude for larger ones (features, logits, delta).
      err = s["max_abs"] / max(1.0, s["scale"])
      if err > args.tol:
        failed.append(f"{name}/{part}")
      print(
        f"{name:12s} {part:8s} max abs {s['max_abs']:.3e}  "
        f"mean abs {s['mean_abs']:.3e}  (max |torch| {s['scale']:.3g})"
      )
  if args.dtype != "float32":
    print(f"{args.dtype} compute: accuracy report only, no verdict")
    return 0
  verdict = f"FAIL: {', '.join(failed)}" if failed else "PASS"
  print(f"{verdict} (tol {args.tol}, relative where max |torch| > 1)")
  return 1 if failed else 0


def _jax_discs(workdir, cfg, src, io) -> dict:
  """Restores the whole train state as train.py does; runs both Ds."""
  import jax.numpy as jnp
  from flax import nnx

  from ii2v_jax.io import checkpoint
  from ii2v_jax.training import optim, state

  optimizers, _ = optim.make_optimizers(cfg.optim, 1, cfg.gan)
  graphdef, disc_graphdefs, abstract = state.abstract_state(cfg, optimizers)
  mngr = checkpoint.manager(workdir)
  train_state, data_state = checkpoint.restore_latest(mngr, abstract)
  assert data_state is None and int(train_state["step"]) == ITERATION
  d, st = train_state["disc"], train_state["disc_stats"]
  disc_io = np.load(src / "disc_io.npz")
  # The same generated clip the torch side scored, (B, T, S, S, 3).
  clip = jnp.asarray(io["video"].transpose(0, 1, 3, 4, 2))
  patch = nnx.merge(disc_graphdefs["patch"], d["patch"], st["patch"])
  nhwc = lambda a: a.transpose(0, 2, 3, 1)
  ndhwc = lambda a: a.transpose(0, 2, 3, 4, 1)
  out = {}
  logits, feats = patch(clip[:, 0])
  out["patch"] = _stats(logits, nhwc(disc_io["patch_eval"]))
  for i, f in enumerate(feats):
    out[f"patch_f{i}"] = _stats(f, nhwc(disc_io[f"patch_feat{i}"]))
  for mode in ("eval", "train"):
    temporal = nnx.merge(
      disc_graphdefs["temporal"], d["temporal"], st["temporal"]
    )
    logits, feats = temporal(clip, update_stats=mode == "train")
    want = nhwc(disc_io[f"temporal_{mode}"])
    out[f"temporal_{mode}"] = _stats(logits, want)
    if mode == "eval":
      for i, f in enumerate(feats):
        want = ndhwc(disc_io[f"temporal_feat{i}"])
        out[f"temporal_f{i}"] = _stats(f, want)
  return out


def _jax_vgg(out, converter, perceptual, jnp):
  npz = out / "vgg19.npz"
  src = out / "vgg19_random.pth"
  try:
    import torch  # noqa: F401
  except ImportError:
    src = out / "vgg19_state_dict.npz"
    if not src.exists():
      print("skipping VGG19: no torch here and no vgg19_state_dict.npz")
      return None
  if converter.main(["--torchvision_vgg19", str(src), "--out", str(npz)]):
    return None
  params = perceptual.load_perceptual_params("vgg19", str(npz))
  io = np.load(out / "vgg19_io.npz")
  nhwc = lambda a: jnp.asarray(a.transpose(0, 2, 3, 1))
  target, pred = nhwc(io["target"]), nhwc(io["pred"])
  feats = perceptual.vgg_features(
    params,
    perceptual.imagenet_normalize(target),
    layers=tuple(VGG_TAPS.values()),
  )
  res = {
    name: _stats(feats[name], io[f"feat_{name}"].transpose(0, 2, 3, 1))
    for name in VGG_TAPS.values()
  }
  loss = perceptual.perceptual_loss(params, target, pred)
  res["loss"] = _stats(np.float32(loss), io["loss"])
  return res


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("side", choices=("torch", "jax", "fixture"))
  p.add_argument("--out", required=True, help="exchange folder")
  p.add_argument("--original_repo", help="checkout of the original (torch)")
  p.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
  p.add_argument("--frames", type=int, default=10)
  p.add_argument("--batch", type=int, default=2)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--threads", type=int, default=2)
  p.add_argument("--tol", type=float, default=1e-4)
  p.add_argument(
    "--dtype",
    default="float32",
    choices=("float32", "bfloat16"),
    help="jax side: compute dtype of our generator (bfloat16 reports only)",
  )
  args = p.parse_args()
  if args.side in ("torch", "fixture"):
    if not args.original_repo:
      p.error(f"the {args.side} step needs --original_repo")
    (torch_step if args.side == "torch" else fixture_step)(args)
    return 0
  return jax_step(args)


if __name__ == "__main__":
  sys.exit(main())
