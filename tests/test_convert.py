"""Tests of the torch-checkpoint converter; none of them needs torch.

State_dicts are built on the fly from the reference's naming and width rules
(REFERENCE.md §4-5), written here independently of our modules. A small
fixture made by the original code (tools/check_parity.py fixture) checks a
whole rollout against the original.
"""

import math
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from configs import tiny
from ii2v_jax.convert import converter
from ii2v_jax.convert import torch_checkpoint as tc
from ii2v_jax.io import checkpoint
from ii2v_jax.models import build, inference
from ii2v_jax.training import optim, state
from tools.check_parity import seeded_state_dict  # The fixture's weights.

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "original_rollout_s32.npz"
NARROW = dict(channels=32, poke_channels=8, min_channels=8)


# --- state_dicts with the reference's names and shapes ----------------------


def reference_shapes(s, channels=512, poke_channels=32, min_channels=32):
  """{torch name: shape} of `SkipSequenceModel` at resolution s."""
  n = int(math.log2(s // 16))
  base = max(min_channels, channels // 2**n)
  widths = [min(channels, base * 2**i) for i in range(n)]
  pwidths = [min(channels, poke_channels * 2**i) for i in range(n)]
  sd = {}

  def conv(name, o, i, transpose=False):
    sd[f"{name}.weight"] = (i, o, 3, 3) if transpose else (o, i, 3, 3)
    sd[f"{name}.bias"] = (o,)

  def res(prefix, i, o, up=False):
    conv(f"{prefix}.conv1.conv", o, i, up)
    conv(f"{prefix}.conv2.conv", o, o)
    if i != o or up:
      conv(f"{prefix}.res_conv.conv", o, i, up)

  for k, (i, o) in enumerate(zip([3] + widths, widths)):
    conv(f"shape_enc.blocks.{k}.conv", o, i)
  res("shape_enc.bottleneck", widths[-1], channels)
  for k, (i, o) in enumerate(zip([2] + pwidths, pwidths)):
    conv(f"dynamics_enc.model.{k}.conv", o, i)
  res("dynamics_enc.bottleneck.0", pwidths[-1], channels)
  res("dynamics_enc.bottleneck.1", channels, channels)
  hidden = [channels] + widths[::-1]
  for k, (i, h) in enumerate(zip([channels] + hidden[:-1], hidden)):
    for gate in ("reset_gate", "update_gate", "out_gate"):
      conv(f"fusion_block.cells.{k}.{gate}", h, i + h)
    if k >= 2:
      conv(f"fusion_block.cells.{k}.up_gate", i, i, transpose=True)
  res("dec.in_block", channels, hidden[1])
  x_ch = hidden[1]
  for k, c in enumerate(hidden[1:]):
    out = hidden[k + 2] if k + 2 < len(hidden) else c
    res(f"dec.blocks.{k}", x_ch + c, out, up=True)
    x_ch = out
  conv("dec.out_conv.conv", 3, x_ch)
  return sd


def _config(resolution=64, **model):
  c = tiny.get_config()
  c.data.resolution = resolution
  c.model.update(model)
  return c


@pytest.fixture(scope="module")
def narrow():
  """(config, state_dict, converted params) of a narrow 64 px model."""
  c = _config(**NARROW)
  sd = seeded_state_dict(reference_shapes(64, **NARROW), 0)
  _, abstract = build.abstract_generator(c)
  return c, sd, converter.convert_generator(sd, abstract)


def _merged(config, params):
  graphdef, _ = build.abstract_generator(config)
  return nnx.merge(graphdef, params)


# --- numpy references in torch layout ---------------------------------------


def np_conv(x_bhwc, w_oikk, b, stride=1):
  """torch Conv2d(k3, p1, stride) on NHWC input with a torch weight."""
  x = np.pad(x_bhwc, ((0, 0), (1, 1), (1, 1), (0, 0)))
  h = (x.shape[1] - 3) // stride + 1
  w = (x.shape[2] - 3) // stride + 1
  out = np.zeros(x.shape[:1] + (h, w, w_oikk.shape[0]))
  for dy in range(3):
    for dx in range(3):
      patch = x[:, dy : dy + stride * h : stride, dx : dx + stride * w : stride]
      out += patch @ w_oikk[:, :, dy, dx].T
  return out + b


def np_conv_transpose(x_bhwc, w_iokk, b):
  """torch ConvTranspose2d(k3, s2, p1, op1): x[m] adds to y[2m - 1 + k]."""
  bsz, h, w, _ = x_bhwc.shape
  y = np.zeros((bsz, 2 * h + 2, 2 * w + 2, w_iokk.shape[1]))  # 1 px border
  for ky in range(3):
    for kx in range(3):
      y[:, ky : ky + 2 * h : 2, kx : kx + 2 * w : 2] += (
        x_bhwc @ w_iokk[:, :, ky, kx]
      )
  return y[:, 1 : 2 * h + 1, 1 : 2 * w + 1] + b


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _rand(seed, shape, scale=1.0):
  return np.random.default_rng(seed).normal(size=shape) * scale


# --- the reference tables ----------------------------------------------------


@pytest.mark.parametrize(
  "s, tensors, params", [(64, 64, 39_110_819), (128, 82, 40_103_203)]
)
def test_reference_names_convert_at_reference_widths(s, tensors, params):
  shapes = reference_shapes(s)
  assert len(shapes) == tensors
  assert sum(math.prod(v) for v in shapes.values()) == params
  # Shapes only: zero-strided views cost no memory.
  sd = {k: np.broadcast_to(np.float32(0), v) for k, v in shapes.items()}
  c, changed = converter.config_for_checkpoint(_config(s), sd)
  assert c.model.channels == 512 and c.model.poke_channels == 32
  _, abstract = build.abstract_generator(c)
  out = tc.convert_tree(sd, abstract)
  assert build.count_params(out) == params
  assert converter.generator_dims(sd).resolution == s


def test_reference_rows_spot_check():
  s64, s128 = reference_shapes(64), reference_shapes(128)
  assert s64["fusion_block.cells.2.up_gate.weight"] == (256, 256, 3, 3)
  assert s64["fusion_block.cells.0.reset_gate.weight"] == (512, 1024, 3, 3)
  assert s64["dec.blocks.0.conv1.conv.weight"] == (512, 128, 3, 3)
  assert s64["dec.blocks.1.res_conv.conv.bias"] == (128,)
  assert s128["fusion_block.cells.3.out_gate.weight"] == (64, 192, 3, 3)
  assert s128["fusion_block.cells.3.up_gate.weight"] == (128, 128, 3, 3)
  assert s128["dec.blocks.2.conv1.conv.weight"] == (128, 64, 3, 3)
  assert s128["dynamics_enc.bottleneck.0.res_conv.conv.weight"] == (
    512,
    128,
    3,
    3,
  )


# --- values land where they belong -------------------------------------------


def test_every_param_is_filled_with_its_tensor(narrow):
  c, sd, params = narrow
  assert build.count_params(params) == sum(v.size for v in sd.values())
  k = params["fusion_block"]["cells"][1]["update_gate"]["kernel"]
  w = sd["fusion_block.cells.1.update_gate.weight"]
  np.testing.assert_array_equal(k, w.transpose(2, 3, 1, 0))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))


def test_strided_conv_matches_torch_layout(narrow):
  c, sd, params = narrow
  block = _merged(c, params).shape_enc.blocks[1].conv
  x = _rand(1, (2, 32, 32, 8))
  want = np_conv(
    x,
    sd["shape_enc.blocks.1.conv.weight"],
    sd["shape_enc.blocks.1.conv.bias"],
    stride=2,
  )
  got = block(jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_transposed_conv_matches_torch_layout(narrow):
  c, sd, params = narrow
  up = _merged(c, params).dec.blocks[0].conv1.conv
  x = _rand(2, (2, 16, 16, 32))  # [x ; e1-level state] = 16 + 16 channels
  w = sd["dec.blocks.0.conv1.conv.weight"]
  assert w.shape == (32, 8, 3, 3)  # (in, out, kh, kw)
  want = np_conv_transpose(x, w, sd["dec.blocks.0.conv1.conv.bias"])
  got = up(jnp.asarray(x, jnp.float32))
  assert got.shape == (2, 32, 32, 8)
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_gru_cell_matches_torch_layout(narrow):
  c, sd, params = narrow
  cell = _merged(c, params).fusion_block.cells[2]  # up-samples its input
  g = lambda name: (
    sd[f"fusion_block.cells.2.{name}.weight"],
    sd[f"fusion_block.cells.2.{name}.bias"],
  )
  x, h = _rand(3, (1, 16, 16, 16)), _rand(4, (1, 32, 32, 8), 0.5)
  x_up = np_conv_transpose(x, *g("up_gate"))
  xh = np.concatenate([x_up, h], -1)
  z = _sigmoid(np_conv(xh, *g("update_gate")))
  r = _sigmoid(np_conv(xh, *g("reset_gate")))
  o = np.tanh(np_conv(np.concatenate([x_up, r * h], -1), *g("out_gate")))
  want = (1 - z) * h + z * o
  got = cell(jnp.asarray(x, jnp.float32), jnp.asarray(h, jnp.float32))
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_rollout_matches_original_fixture():
  """Seeded weights through our converter vs the original code's rollout."""
  f = np.load(FIXTURE)
  shapes = reference_shapes(32, channels=64)
  sd = seeded_state_dict(shapes, int(f["seed"]))
  assert len(sd) == int(f["num_tensors"])
  checksum = sum(float(np.abs(v).astype(np.float64).sum()) for v in sd.values())
  assert checksum == pytest.approx(float(f["weight_checksum"]), rel=1e-9), (
    "numpy's uniform stream changed; regenerate the fixture with "
    "tools/check_parity.py fixture"
  )
  c, _ = converter.config_for_checkpoint(_config(32), sd)
  _, abstract = build.abstract_generator(c)
  model = _merged(c, converter.convert_generator(sd, abstract))
  x0 = jnp.asarray(f["x0_nchw"].transpose(0, 2, 3, 1))
  poke = jnp.asarray(f["poke_nchw"].transpose(0, 2, 3, 1))
  want = f["video_ntchw"].transpose(0, 1, 3, 4, 2)
  video, _ = model.rollout(x0, poke, want.shape[1])
  np.testing.assert_allclose(video, want, atol=1e-5)
  recon, _ = model.autoencode(x0)
  np.testing.assert_allclose(
    recon, f["recon_nchw"].transpose(0, 2, 3, 1), atol=1e-5
  )


# --- errors name the offending tensor ---------------------------------------


def test_missing_wrong_shape_and_extra_tensors_are_named(narrow):
  c, sd, _ = narrow
  _, abstract = build.abstract_generator(c)
  bad = dict(sd)
  del bad["dec.out_conv.conv.bias"]
  bad["dec.blocks.1.conv1.conv.weight"] = np.zeros((16, 9, 3, 3), np.float32)
  bad["fusion_block.cells.9.up_gate.weight"] = np.zeros(3, np.float32)
  with pytest.raises(tc.ConversionError) as info:
    converter.convert_generator(bad, abstract)
  msg = str(info.value)
  assert "missing tensor 'dec.out_conv.conv.bias' (expected shape (3,))" in msg
  assert (
    "'dec.blocks.1.conv1.conv.weight' has shape (16, 9, 3, 3), "
    "expected (16, 8, 3, 3)" in msg
  )
  assert "unexpected tensors: fusion_block.cells.9.up_gate.weight" in msg


def test_resolution_mismatch_suggests_the_right_config(narrow):
  _, sd, _ = narrow
  with pytest.raises(tc.ConversionError, match="configs/iper.py:64"):
    converter.config_for_checkpoint(
      _config(128), sd, config_spec="configs/iper.py:128"
    )
  _, abstract128 = build.abstract_generator(_config(128, **NARROW))
  with pytest.raises(tc.ConversionError, match="64px model"):
    converter.convert_generator(sd, abstract128)


def test_widths_follow_the_checkpoint(narrow):
  _, sd, _ = narrow
  base = _config(channels=16, poke_channels=4, min_channels=4)
  c, changed = converter.config_for_checkpoint(base, sd)
  # min_channels 4 already gives the checkpoint's widths (8, 16).
  assert changed == {"model.channels": (16, 32), "model.poke_channels": (4, 8)}
  assert (c.model.channels, c.model.poke_channels) == (32, 8)
  odd = dict(sd)
  odd["dynamics_enc.model.1.conv.weight"] = np.zeros((12, 8, 3, 3))
  with pytest.raises(tc.ConversionError, match="width rules"):
    converter.config_for_checkpoint(_config(), odd)


def test_not_a_generator_state_dict():
  with pytest.raises(tc.ConversionError, match="not an II2V generator"):
    converter.generator_dims({"features.0.weight": np.zeros((64, 3, 3, 3))})


# --- reading checkpoint files -----------------------------------------------


def test_unwrap_strips_module_prefix_and_nesting():
  w = np.zeros((2, 2))
  assert list(tc.unwrap_state_dict({"module.a.weight": w})) == ["a.weight"]
  ignite = {"model": {"module.a": w}, "optimizer_dis": {"state": {}}}
  assert list(tc.unwrap_state_dict(ignite)) == ["a"]
  with pytest.raises(tc.TorchCheckpointError, match="not a tensor"):
    tc.unwrap_state_dict({"a": w, "epoch": 3}, "f.pt")
  with pytest.raises(tc.TorchCheckpointError, match="holds a list"):
    tc.unwrap_state_dict([w], "f.pt")


def test_iteration_from_filename():
  assert tc.iteration_from_filename("x/reg_ckpt_checkpoint_12000.pt") == 12000
  assert tc.iteration_from_filename("vgg19-dcbb9e9d.pth") is None
  assert tc.iteration_from_filename("reg_ckpt_checkpoint_7.npz") == 7
  assert tc.iteration_from_filename("model.npz") is None


def test_npz_state_dicts_round_trip_and_corrupt_files_are_named(tmp_path):
  sd = {"module.a.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}
  path = tmp_path / "sd.npz"
  tc.save_npz(sd, path)
  np.testing.assert_array_equal(
    tc.load_state_dict(path)["a.weight"], sd["module.a.weight"]
  )
  bad = tmp_path / "trunc.npz"
  bad.write_bytes(path.read_bytes()[:40])
  with pytest.raises(tc.TorchCheckpointError, match=str(bad)):
    tc.load_state_dict(bad)
  with pytest.raises(tc.TorchCheckpointError, match="not found"):
    tc.load_state_dict(tmp_path / "absent.pt")


def test_pt_without_torch_says_how_to_install(tmp_path, monkeypatch):
  path = tmp_path / "reg_ckpt_checkpoint_5.pt"
  path.write_bytes(b"not really a checkpoint")
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails
  with pytest.raises(tc.TorchCheckpointError) as info:
    tc.load_state_dict(path)
  assert "pip install torch==2.13.0" in str(info.value)
  assert "\n" not in str(info.value)


# --- the discriminators ------------------------------------------------------


def _patch_shapes(ndf):
  chans = [3, ndf, 2 * ndf, 4 * ndf, 8 * ndf]
  sd = {"in_conv.weight": (ndf, 3, 4, 4), "in_conv.bias": (ndf,)}
  for k in range(3):
    sd[f"layers.{k}.weight"] = (chans[k + 2], chans[k + 1], 4, 4)
    sd[f"layers.{k}.bias"] = (chans[k + 2],)
  sd["out_conv.weight"], sd["out_conv.bias"] = (1, 8 * ndf, 4, 4), (1,)
  return sd


def _temporal_shapes(width, stages):
  sd = {}

  def sn(name, o, i, k=(3, 3, 3)):
    sd[f"{name}.weight_orig"] = (o, i, *k)
    sd[f"{name}.weight_u"] = (o,)
    sd[f"{name}.weight_v"] = (i * math.prod(k),)

  def gn(name, c):
    sd[f"{name}.weight"] = sd[f"{name}.bias"] = (c,)

  def layer(prefix, i, o):
    for b in range(2):
      sn(f"{prefix}.{b}.conv1", o, i if b == 0 else o)
      sn(f"{prefix}.{b}.conv2", o, o)
      gn(f"{prefix}.{b}.bn1", o)
      gn(f"{prefix}.{b}.bn2", o)
    sn(f"{prefix}.0.downsample.0", o, i)
    gn(f"{prefix}.0.downsample.1", o)

  sn("conv1", width, 3, (3, 7, 7))
  gn("gn1", width)
  layer("layer1", width, width // 2)
  ch = width // 2
  for k, o in enumerate(stages):
    layer(f"layers.{k}", ch, o)
    ch = o
  sd["final.weight"], sd["final.bias"] = (1, ch, 3, 3), (1,)
  return sd


def test_reference_discriminator_tables_convert():
  c = tiny.get_config()
  c.gan.patch_ndf, c.gan.temporal_width = 64, 64
  _, abstract = build.abstract_discriminators(c)
  patch = _patch_shapes(64)
  temporal = _temporal_shapes(64, [128, 256, 256, 256])
  assert len(patch) == 10 and len(temporal) == 132
  assert sum(math.prod(v) for v in patch.values()) == 2_764_737
  zeros = lambda d: {k: np.broadcast_to(np.float32(0), v) for k, v in d.items()}
  tc.convert_tree(zeros(patch), abstract["disc"]["patch"])
  both = {
    "params": abstract["disc"]["temporal"],
    "stats": abstract["disc_stats"]["temporal"],
  }
  out = tc.convert_tree(
    zeros(temporal), both, lambda p, s: tc.spectral_rule(p[1:], s)
  )
  params = [v for k, v in temporal.items() if not k.endswith(("_u", "_v"))]
  assert sum(math.prod(v) for v in params) == 26_554_369
  assert build.count_params(out["params"]) == 26_554_369


def _tiny_disc_state_dicts(c):
  patch_sd = seeded_state_dict(_patch_shapes(c.gan.patch_ndf), 1)
  width = c.gan.temporal_width
  stages = [min(2 * width * 2**k, 4 * width) for k in range(4)]
  return patch_sd, seeded_state_dict(_temporal_shapes(width, stages), 2)


def test_discriminators_convert_with_their_state():
  c = tiny.get_config()
  graphdefs, _ = build.abstract_discriminators(c)
  patch_sd, temporal_sd = _tiny_disc_state_dicts(c)
  discs = converter.discriminator_state(c, patch_sd, temporal_sd)
  patch = nnx.merge(
    graphdefs["patch"], discs["disc"]["patch"], discs["disc_stats"]["patch"]
  )
  w, b = patch_sd["in_conv.weight"], patch_sd["in_conv.bias"]
  k = np.asarray(patch.in_conv.kernel[...])
  np.testing.assert_array_equal(k, w.transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(patch.in_conv.bias[...], b)
  temporal = nnx.merge(
    graphdefs["temporal"],
    discs["disc"]["temporal"],
    discs["disc_stats"]["temporal"],
  )
  conv = temporal.layers[0][0].conv1
  w = temporal_sd["layers.0.0.conv1.weight_orig"]
  u = temporal_sd["layers.0.0.conv1.weight_u"]
  v = temporal_sd["layers.0.0.conv1.weight_v"]
  # Eval-mode torch: sigma = u^T W v with W = weight_orig as (O, rest).
  sigma = u @ w.reshape(w.shape[0], -1) @ v
  np.testing.assert_allclose(conv.sigma(update_stats=False), sigma, rtol=1e-5)
  np.testing.assert_array_equal(conv.kernel[...], w.transpose(2, 3, 4, 1, 0))
  bad = dict(temporal_sd)
  del bad["gn1.weight"]
  with pytest.raises(tc.ConversionError, match="'gn1.weight'"):
    converter.discriminator_state(c, None, bad)


# --- the CLI -----------------------------------------------------------------


def test_cli_round_trip(tmp_path, narrow, capsys):
  c, sd, params = narrow
  src = tmp_path / "torch" / "reg_ckpt_checkpoint_3000.npz"
  tc.save_npz({f"module.{k}": v for k, v in sd.items()}, src)
  # The discriminators beside it are found by name (ignite's file names).
  patch_sd, temporal_sd = _tiny_disc_state_dicts(tiny.get_config())
  tc.save_npz(patch_sd, src.with_name("disc_patch_checkpoint_3000.npz"))
  tc.save_npz(temporal_sd, src.with_name("disc_temp_checkpoint_3000.npz"))
  workdir = tmp_path / "run"
  argv = ["--torch_checkpoint", str(src), "--workdir", str(workdir)]
  argv += ["--config", str(ROOT / "configs" / "tiny.py")]
  assert converter.main(argv) == 0
  out = capsys.readouterr().out
  assert f"model.channels: {tiny.get_config().model.channels} -> 32" in out
  assert "step 3000" in out
  assert "'patch': 'converted', 'temporal': 'converted'" in out
  config, graphdef, loaded, step = checkpoint.load_model(str(workdir))
  assert step == 3000 and config.model.channels == 32
  jax.tree.map(np.testing.assert_array_equal, loaded, params)
  x0 = jnp.tanh(jnp.asarray(_rand(6, (1, 64, 64, 3)), jnp.float32))
  poke = jnp.zeros((1, 64, 64, 2)).at[:, 30:33, 20:23].set(jnp.array([4, -2]))
  video = inference.make_rollout_fn(graphdef, 3)(loaded, x0, poke)
  assert video.shape == (1, 3, 64, 64, 3) and bool(jnp.isfinite(video).all())

  # Training resumes from it: the state restores into train.py's abstract
  # state, with no data-iterator state and the schedules at step 3000.
  optimizers, _ = optim.make_optimizers(config.optim, 1, config.gan)
  abstract = state.abstract_state(config, optimizers)[-1]
  mngr = checkpoint.manager(workdir)
  restored, data_state = checkpoint.restore_latest(mngr, abstract)
  assert data_state is None and int(restored["step"]) == 3000
  is_sched = lambda x: isinstance(x, optax.ScaleByScheduleState)
  counts = {
    name: [int(x.count) for x in jax.tree.leaves(st, is_sched) if is_sched(x)]
    for name, st in restored["opt"].items()
  }
  assert counts["dyn"] == [3000]
  # D schedules count D updates, which start at gan.start_iteration.
  d_updates = max(0, 3000 - config.gan.start_iteration + 1)
  assert counts["disc_patch"] == counts["disc_temporal"] == [d_updates]

  # An existing run is not overwritten without --force.
  assert converter.main(argv) == 2
  assert "already holds checkpoints" in capsys.readouterr().err
  assert converter.main(argv + ["--force"]) == 0


def test_cli_rejects_a_resolution_mismatch(tmp_path, narrow, capsys):
  _, sd, _ = narrow
  src = tmp_path / "sd.npz"
  tc.save_npz(sd, src)
  cfg = f"{ROOT / 'configs' / 'iper.py'}:128"
  argv = ["--torch_checkpoint", str(src), "--workdir", str(tmp_path / "w")]
  assert converter.main(argv + ["--config", cfg]) == 2
  err = capsys.readouterr().err
  assert "64x64 model" in err and "configs/iper.py:64" in err
  assert not (tmp_path / "w" / "checkpoints").exists()


def test_schedule_counts_follow_the_iteration():
  c = tiny.get_config()
  optimizers, _ = optim.make_optimizers(c.optim, 1, c.gan)
  params = {k: {"w": jnp.zeros(2)} for k in ("shape_enc", "dec")}
  params.update(dynamics_enc={"w": jnp.zeros(2)}, fusion_block={})
  disc = {"disc": {"patch": {"w": jnp.zeros(1)}, "temporal": {}}}
  st = state.init_state(params, optimizers, disc)
  start = c.gan.start_iteration
  out = converter._schedule_counts(st["opt"], start + 99, start)
  is_sched = lambda x: isinstance(x, optax.ScaleByScheduleState)
  count = lambda name: [
    int(x.count) for x in jax.tree.leaves(out[name], is_sched) if is_sched(x)
  ]
  assert count("ae_enc") == count("dyn") == [start + 99]
  assert count("disc_patch") == [100]  # D updates at iterations start..
  adam = [x for x in jax.tree.leaves(out["dyn"], is_sched) if not is_sched(x)]
  assert all(int(jnp.max(a)) == 0 for a in adam)  # fresh moments and count


def _snapshot(folder: pathlib.Path) -> dict:
  return {
    str(p.relative_to(folder)): p.read_bytes()
    for p in sorted(folder.rglob("*"))
    if p.is_file()
  }


def test_force_with_a_bad_input_leaves_the_workdir_byte_identical(
  tmp_path, narrow, capsys
):
  _, sd, _ = narrow
  good = tmp_path / "reg_ckpt_checkpoint_7.npz"
  tc.save_npz(sd, good)
  workdir = tmp_path / "run"
  no_gan = tmp_path / "no_gan.py"  # No discriminators to initialise.
  no_gan.write_text(
    "from configs import tiny\n\n\ndef get_config(arg=None):\n"
    "  c = tiny.get_config(arg)\n  c.gan.enabled = False\n  return c\n"
  )
  argv = ["--workdir", str(workdir), "--config", str(no_gan), "--force"]
  assert converter.main(["--torch_checkpoint", str(good), *argv]) == 0
  (workdir / "tb").mkdir()
  (workdir / "tb" / "events.out").write_bytes(b"trained for days")
  (workdir / "eval.json").write_text("{}")
  before = _snapshot(workdir)
  capsys.readouterr()

  s128 = seeded_state_dict(reference_shapes(128, **NARROW), 0)
  renamed = dict(sd)
  renamed["dec.out_conv.conv.bias_typo"] = renamed.pop("dec.out_conv.conv.bias")
  bad = {"128px": s128, "wrong_key": renamed}
  for name, state_dict in bad.items():
    tc.save_npz(state_dict, tmp_path / f"{name}.npz")
  (tmp_path / "truncated.npz").write_bytes(good.read_bytes()[:500])
  (tmp_path / "broken_config.py").write_text("def get_config(arg):\n  1/0\n")
  cases = [
    ["--torch_checkpoint", str(tmp_path / f"{name}.npz"), *argv]
    for name in (*bad, "truncated")
  ]
  cases.append(
    ["--torch_checkpoint", str(good), "--workdir", str(workdir), "--force"]
    + ["--config", str(tmp_path / "broken_config.py")]
  )
  for case in cases:
    assert converter.main(case) == 2, case
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert _snapshot(workdir) == before, case
  assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")]

  # A good input replaces the run whole, once it is complete.
  assert converter.main(["--torch_checkpoint", str(good), *argv]) == 0
  assert not (workdir / "eval.json").exists()
  assert (workdir / "conversion.json").exists()
  assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")]
