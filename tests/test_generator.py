"""Tests of the II2V generator against REFERENCE.md §3-6."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from ii2v_jax.models import layers
from ii2v_jax.models.generator import (
  Generator,
  component_param_counts,
  count_params,
)

NARROW = dict(channels=32, poke_channels=8, min_channels=8)
DN = ("NHWC", "HWIO", "NHWC")


def _normal(seed, shape, scale=1.0):
  return scale * jax.random.normal(jax.random.key(seed), shape)


def _poke(b, s, value=(3.0, -2.0)):
  poke = np.zeros((b, s, s, 2), np.float32)
  poke[:, s // 2 - 1 : s // 2 + 2, s // 3 - 1 : s // 3 + 2] = value
  return jnp.asarray(poke)


@pytest.fixture(scope="module")
def gen64():
  return Generator(resolution=64, **NARROW, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def inputs64():
  x0_bhwc = jnp.tanh(_normal(1, (2, 64, 64, 3)))
  return x0_bhwc, _poke(2, 64)


def _jit_call(gen, fn, *args):
  """fn(gen, *args) under jax.jit, split/merged at a functional boundary."""
  graphdef, state = nnx.split(gen)
  pure = lambda state, *a: fn(nnx.merge(graphdef, state), *a)
  return jax.jit(pure)(state, *args)


def _rollout3(gen, x0_bhwc, poke_bhw2):
  return gen.rollout(x0_bhwc, poke_bhw2, 3)


@pytest.fixture(scope="module")
def rollout64(gen64, inputs64):
  """Jitted 3-frame rollout, shared (whole-graph jit compiles fastest)."""
  return _jit_call(gen64, _rollout3, *inputs64)


# Plain reference: gates as single convs over the concatenated [x; h].
def _ref_cell(cell, x_bhwc, h_bhwc):
  if cell.up_gate is not None:
    x_bhwc = cell.up_gate(x_bhwc)
  xh = jnp.concatenate([x_bhwc, h_bhwc], -1)
  z = jax.nn.sigmoid(cell.update_gate(xh))
  r = jax.nn.sigmoid(cell.reset_gate(xh))
  h_tilde = jnp.tanh(cell.out_gate(jnp.concatenate([x_bhwc, r * h_bhwc], -1)))
  return (1 - z) * h_bhwc + z * h_tilde


def _ref_step(fusion, delta_bhwc, hs):
  new = []
  for i, (cell, h) in enumerate(zip(fusion.cells, hs)):
    new.append(_ref_cell(cell, delta_bhwc if i == 0 else new[-1], h))
  return new


def _with_random_biases(module, seed):
  """A copy whose GRU gate biases are random (their init is zero)."""
  module = nnx.clone(module)
  biases = [
    var
    for path, var in nnx.iter_graph(module)
    if path and path[-1] == "bias" and isinstance(var, nnx.Param)
  ]
  for i, var in enumerate(biases):
    var[...] = _normal(100 * seed + i, var[...].shape, 0.5)
  return module


def _max_diff(a, b):
  return float(jnp.max(jnp.abs(jnp.asarray(a) - jnp.asarray(b))))


# --- parameter counts -------------------------------------------------------


@pytest.mark.parametrize(
  "resolution, total, parts",
  [
    (64, 39_110_819, (5_018_880, 7_689_376, 21_384_064, 5_018_499)),
    (128, 40_103_203, (5_090_944, 8_353_056, 21_863_616, 4_795_587)),
  ],
)
def test_param_counts_match_reference(resolution, total, parts):
  gen = nnx.eval_shape(
    lambda: Generator(resolution=resolution, rngs=nnx.Rngs(0))
  )
  assert count_params(gen) == total
  names = ("shape_enc", "dynamics_enc", "fusion_block", "dec")
  assert component_param_counts(gen) == dict(zip(names, parts))


@pytest.mark.parametrize("resolution", [16, 48, 100, 0, 64.0])
def test_invalid_resolution_raises(resolution):
  with pytest.raises(ValueError, match="resolution"):
    Generator(resolution=resolution, **NARROW, rngs=nnx.Rngs(0))


# --- building blocks --------------------------------------------------------


def test_instance_norm_matches_numpy():
  # Small variance, so eps = 1e-5 (not Flax's 1e-6) matters.
  x = np.asarray(_normal(2, (2, 5, 7, 3), 3e-3), np.float64) + 0.01
  mean = x.mean(axis=(1, 2), keepdims=True)
  var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
  want = (x - mean) / np.sqrt(var + 1e-5)
  got = layers.instance_norm(jnp.asarray(x, jnp.float32))
  assert _max_diff(got, want) < 1e-5


def test_stride2_conv_pads_symmetrically():
  block = layers.Conv2dBlock(4, 6, stride=2, rngs=nnx.Rngs(0))
  x = _normal(3, (2, 8, 8, 4))
  kernel, bias = block.conv.kernel[...], block.conv.bias[...]
  conv = lambda pad: (
    lax.conv_general_dilated(x, kernel, (2, 2), pad, dimension_numbers=DN)
    + bias
  )
  want = conv(((1, 1), (1, 1)))
  assert block.conv(x).shape == (2, 4, 4, 6)
  assert _max_diff(block.conv(x), want) < 1e-5
  assert _max_diff(conv("SAME"), want) > 1e-2  # 'SAME' pads (0, 1) here
  want_block = jax.nn.elu(layers.instance_norm(want))
  assert _max_diff(block(x), want_block) < 1e-5


def _np_conv_transpose(x_bhwi, w_iokk, bias_o):
  """torch ConvTranspose2d(k3, s2, p1, op1) as a scatter: out[2h-1+a]."""
  b, h, w, _ = x_bhwi.shape
  out = np.zeros((b, 2 * h + 1, 2 * w + 1, w_iokk.shape[1]))
  for a in range(3):
    for c in range(3):
      contrib = np.einsum("bhwi,io->bhwo", x_bhwi, w_iokk[:, :, a, c])
      out[:, a : a + 2 * h : 2, c : c + 2 * w : 2] += contrib
  return out[:, 1:, 1:] + bias_o


def test_conv_transpose_block_matches_torch_semantics():
  block = layers.Conv2dTransposeBlock(5, 4, rngs=nnx.Rngs(0))
  x = _normal(4, (2, 6, 6, 5))
  w_iokk = np.asarray(block.conv.kernel[...]).transpose(3, 2, 0, 1)
  bias = np.asarray(block.conv.bias[...])
  want = _np_conv_transpose(np.asarray(x, np.float64), w_iokk, bias)
  # Independent second form: x2 input-dilated conv with the flipped kernel.
  k_hwio = w_iokk.transpose(2, 3, 0, 1)[::-1, ::-1]
  dilated = lax.conv_general_dilated(
    x,
    jnp.asarray(k_hwio),
    (1, 1),
    ((1, 2), (1, 2)),
    (2, 2),
    dimension_numbers=DN,
  )
  assert want.shape == (2, 12, 12, 4)
  assert _max_diff(dilated + bias, want) < 1e-5
  assert _max_diff(block.conv(x), want) < 1e-5
  want_block = np.maximum(layers.instance_norm(jnp.asarray(want)), 0)
  assert _max_diff(block(x), want_block) < 1e-5


def test_upsampling_resblock_relu_paths_and_unbounded_sum():
  block = layers.ResBlock(6, 4, upsampling=True, rngs=nnx.Rngs(0))
  x = _normal(5, (1, 4, 4, 6))

  def up(b):  # ConvTranspose -> IN -> ReLU, from the torch reference form
    w = np.asarray(b.conv.kernel[...]).transpose(3, 2, 0, 1)
    y = _np_conv_transpose(np.asarray(x), w, np.asarray(b.conv.bias[...]))
    return jax.nn.relu(layers.instance_norm(jnp.asarray(y, jnp.float32)))

  want = block.conv2(up(block.conv1)) + up(block.res_conv)
  out = block(x)
  assert out.shape == (1, 8, 8, 4)
  assert _max_diff(out, want) < 1e-5
  assert float(out.min()) < 0  # no activation after the sum


def test_identity_skip_only_when_shapes_match():
  block = lambda *a, **kw: nnx.eval_shape(
    lambda: layers.ResBlock(*a, **kw, rngs=nnx.Rngs(0))
  )
  assert block(8, 8).res_conv is None
  assert block(8, 16).res_conv is not None
  assert block(8, 8, stride=2).res_conv is not None
  up = block(8, 8, upsampling=True)
  assert isinstance(up.res_conv, layers.Conv2dTransposeBlock)
  assert isinstance(up.conv1, layers.Conv2dTransposeBlock)


def test_torch_default_init_bounds():
  conv = layers.make_conv(16, 64, dtype=jnp.float32, rngs=nnx.Rngs(0))
  up = layers.make_conv_up(4, 64, dtype=jnp.float32, rngs=nnx.Rngs(0))
  # fan_in: in * 9 for a conv, out * 9 for a transposed conv (torch).
  for mod, fan_in in ((conv, 16 * 9), (up, 64 * 9)):
    bound = 1 / np.sqrt(fan_in)
    for p in (mod.kernel[...], mod.bias[...]):
      assert float(jnp.abs(p).max()) <= bound
      assert float(jnp.abs(p).max()) > 0.8 * bound


def test_gru_gates_orthogonal_with_zero_bias(gen64):
  cell0, _, cell2 = gen64.fusion_block.cells
  assert cell0.up_gate is None
  gates = [cell0.reset_gate, cell0.update_gate, cell0.out_gate]
  gates += [cell2.reset_gate, cell2.update_gate, cell2.out_gate, cell2.up_gate]
  for g in gates:
    # HWIO (or HW,out,in for the transposed conv) -> torch (dim0, rest).
    w = np.asarray(g.kernel[...]).transpose(3, 2, 0, 1)
    w = w.reshape(w.shape[0], -1)
    np.testing.assert_allclose(w @ w.T, np.eye(w.shape[0]), atol=1e-5)
    assert not np.any(np.asarray(g.bias[...]))


# --- ConvGRU ----------------------------------------------------------------


def test_separable_cell_matches_concatenated_convs(gen64):
  # 16 -> 8 channels, up-sampling; random biases check the gate wiring.
  cell = _with_random_biases(gen64.fusion_block.cells[2], 0)
  x, h = _normal(6, (2, 4, 4, 16)), _normal(7, (2, 8, 8, 8))
  assert _max_diff(cell(x, h), _ref_cell(cell, x, h)) < 1e-5


def test_precomputed_poke_input_matches_concatenated_convs(gen64):
  fusion = _with_random_biases(gen64.fusion_block, 1)
  delta = _normal(8, (2, 16, 16, 32))
  hs = [
    _normal(9 + i, (2, s, s, c))
    for i, (s, c) in enumerate([(16, 32), (16, 16), (32, 8)])
  ]
  kerns = fusion.kernels()
  xc0 = fusion.input_gates0(kerns, delta)
  got = fusion.step(kerns, hs, xc0_bhw3k=xc0)
  want = _ref_step(fusion, delta, hs)
  for g, w in zip(got, want, strict=True):
    assert g.shape == w.shape
    assert _max_diff(g, w) < 1e-5


# --- generator --------------------------------------------------------------


@pytest.mark.parametrize("resolution", [64, 128])
def test_output_shapes_and_range(resolution, gen64, inputs64, rollout64):
  if resolution == 64:
    gen, (x0, _), (video, states) = gen64, inputs64, rollout64
  else:
    gen = Generator(resolution=128, **NARROW, rngs=nnx.Rngs(0))
    x0 = jnp.tanh(_normal(1, (2, 128, 128, 3)))
    video, states = _jit_call(gen, _rollout3, x0, _poke(2, 128))
  s, n = resolution, int(np.log2(resolution // 16))
  assert video.shape == (2, 3, s, s, 3) and video.dtype == jnp.float32
  assert float(jnp.abs(video).max()) <= 1.0
  # GRU order: bn (C = 32) at 16x16, then the E_sigma skips deep to shallow.
  widths = [32] + [min(32, 8 * 2**i) for i in range(n)][::-1]
  sizes = [16, 16] + [16 * 2**i for i in range(1, n)]
  want = [(2, 3, sz, sz, c) for sz, c in zip(sizes, widths, strict=True)]
  assert [st.shape for st in states] == want
  x_hat, ae_states = _jit_call(gen, lambda g, x: g.autoencode(x), x0)
  assert x_hat.shape == (2, s, s, 3)
  assert float(jnp.abs(x_hat).max()) <= 1.0
  assert [a.shape for a in ae_states] == [w[:1] + w[2:] for w in want]


def test_jitted_rollout_matches_eager_python_loop(gen64, inputs64, rollout64):
  """scan + batched decode (under jax.jit, split/merge) == a plain loop."""
  x0, poke = inputs64
  video, states = rollout64
  assert video.shape == (2, 3, 64, 64, 3)
  delta, hs = gen64.encode_poke(poke), gen64.encode_shape(x0)
  for t in range(3):
    hs = gen64.fusion_block(delta, hs)
    assert _max_diff(video[:, t], gen64.decode(hs)) < 1e-5
    for got, want in zip(states, hs, strict=True):
      assert _max_diff(got[:, t], want) < 1e-5


def test_rollout_without_precompute_is_equal(inputs64, rollout64):
  plain = Generator(
    resolution=64, **NARROW, precompute_poke_input=False, rngs=nnx.Rngs(0)
  )
  video, states = plain.rollout(*inputs64, 3)
  assert _max_diff(video, rollout64[0]) < 1e-5
  for got, want in zip(states, rollout64[1], strict=True):
    assert _max_diff(got, want) < 1e-5


def test_state_initialised_from_shape_encoder(gen64, inputs64):
  x0, _ = inputs64
  poke = jnp.zeros((2, 64, 64, 2))
  _, states = gen64.rollout(x0, poke, 1)
  delta = gen64.encode_poke(poke)
  h0 = gen64.encode_shape(x0)
  want = _ref_step(gen64.fusion_block, delta, h0)
  from_zeros = _ref_step(
    gen64.fusion_block, delta, [jnp.zeros_like(h) for h in h0]
  )
  for got, w, z in zip(states, want, from_zeros, strict=True):
    assert _max_diff(got[:, 0], w) < 1e-5
    assert _max_diff(got[:, 0], z) > 1e-3


def test_bf16_compute_keeps_float32_params_and_output(inputs64, rollout64):
  gen = Generator(resolution=64, **NARROW, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  params = jax.tree.leaves(nnx.state(gen, nnx.Param))
  assert all(p.dtype == jnp.float32 for p in params)
  video, states = _jit_call(gen, _rollout3, *inputs64)
  assert video.dtype == jnp.float32
  assert all(s.dtype == jnp.float32 for s in states)
  err = _max_diff(video, rollout64[0])
  assert 0 < err < 0.1, err


def test_subpixel_up_conv_equals_flax_conv_transpose():
  rngs = nnx.Rngs(3)
  ref = nnx.ConvTranspose(
    5,
    7,
    (3, 3),
    strides=(2, 2),
    padding=layers.PAD_UP,
    transpose_kernel=True,
    rngs=rngs,
  )
  ref.bias.value = jax.random.normal(jax.random.key(1), (7,))
  up = layers.make_conv_up(5, 7, dtype=jnp.float32, rngs=rngs)
  up.kernel.value, up.bias.value = ref.kernel.value, ref.bias.value
  x = jax.random.normal(jax.random.key(2), (2, 6, 6, 5))
  np.testing.assert_allclose(up(x), ref(x), atol=1e-5)
  # The phase form must also differentiate like the input-dilated conv.
  g = jax.random.normal(jax.random.key(4), (2, 12, 12, 7))

  def grads(fn):
    return jax.grad(lambda x, k: jnp.sum(fn(x, k) * g), (0, 1))(
      x, ref.kernel.value
    )

  def dilated(x, k):
    return lax.conv_transpose(
      x,
      k,
      (2, 2),
      layers.PAD_UP,
      transpose_kernel=True,
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )

  def phases(x, k):
    return layers.conv_transpose_up(x, k, jnp.zeros(7), jnp.float32)

  for ours, theirs in zip(grads(phases), grads(dilated)):
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_colour_stats_decoder_restores_x0_colour(inputs64):
  """With the deviation on, a zero out_conv renders x0's mean colour."""
  gen = Generator(resolution=64, **NARROW, colour_stats=True, rngs=nnx.Rngs(0))
  plain = Generator(resolution=64, **NARROW, rngs=nnx.Rngs(0))
  assert count_params(gen) == count_params(plain)
  x0, poke = inputs64
  x0 = 0.3 * x0 + jnp.array([0.5, -0.4, 0.1])  # Distinct colour per channel.
  conv = gen.dec.out_conv.conv
  conv.kernel[...] = jnp.zeros_like(conv.kernel[...])
  conv.bias[...] = jnp.full_like(conv.bias[...], 1.0)
  video, _ = gen.rollout(x0, poke, 2)
  recon, _ = gen.autoencode(x0)
  mean = jnp.mean(x0, axis=(1, 2), keepdims=True)
  std = jnp.std(x0, axis=(1, 2), keepdims=True)
  for frame in (video[:, 0], video[:, 1], recon):
    np.testing.assert_allclose(
      frame, jnp.broadcast_to(mean + std, x0.shape), atol=1e-4
    )
