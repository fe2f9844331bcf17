"""Tests of the patch and temporal discriminators (REFERENCE.md §4.3, §5.3).

Full-width models are only built abstractly (nnx.eval_shape); numerics use
narrow models whose values are drawn in numpy: on CPU every jax.random op
compiles anew per shape, which would dominate this file's run time.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from ii2v_jax.models.discriminators import (
  PatchDiscriminator,
  SpectralState,
  TemporalDiscriminator,
  max_pool3d,
  patch_logits_size,
  temporal_stages,
)
from ii2v_jax.models.generator import count_params
from ii2v_jax.models.spectral_norm import SNConv3d, torch_matrix

DN2 = ("NHWC", "HWIO", "NHWC")
DN3 = ("NDHWC", "DHWIO", "NDHWC")
# Narrow temporal D: stem 32, layer1 16, stages 32 channels.
NARROW_T = dict(resolution=32, base_channels=32, max_channels=32)
# (stride_t, spatial stride) of layer1 and the 4 stages at S = 32, T = 10.
STRIDES_32 = [(1, 1), (2, 2), (2, 2), (2, 1), (2, 1)]


def _rngs(seed):
  # rbg keys: threefry init ops compile slowly on CPU, once per shape.
  return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def _np_normal(seed, shape, scale=1.0):
  rng = np.random.default_rng(seed)
  return (scale * rng.normal(size=shape)).astype(np.float32)


def _np_normalize(x):
  return x / max(np.linalg.norm(x), 1e-12)


def _abstract(cls, **kwargs):
  return nnx.eval_shape(lambda: cls(**kwargs, rngs=nnx.Rngs(0)))


def _abstract_call(module, *args, **kwargs):
  """Output shapes of module(*args) without computing anything."""
  graphdef, state = nnx.split(module)
  fn = lambda state, *a: nnx.merge(graphdef, state)(*a, **kwargs)
  return jax.eval_shape(fn, state, *args)


def _fill(module, seed):
  """Sets every variable to numpy-drawn values (u, v unit; GN scale ~ 1)."""
  rng = np.random.default_rng(seed)
  for path, var in nnx.to_flat_state(nnx.state(module)):
    a = rng.normal(size=var.shape).astype(np.float32)
    if path[-1] in ("u", "v"):
      a = _np_normalize(a)
    elif path[-1] == "scale":
      a = 1 + 0.2 * a
    elif path[-1] == "kernel":
      a = a / math.sqrt(math.prod(var.shape[:-1]))
    else:
      a = 0.2 * a
    var.set_value(jnp.asarray(a))
  return module


def _sn_convs(module):
  return [m for _, m in nnx.iter_graph(module) if isinstance(m, SNConv3d)]


def _torch_weight_conv(weight_oitkk):
  """An SNConv3d holding a torch (O, I, kt, kh, kw) weight, as converted."""
  o, i = weight_oitkk.shape[:2]
  conv = SNConv3d(i, o, rngs=_rngs(0))
  conv.kernel[...] = jnp.asarray(weight_oitkk.transpose(2, 3, 4, 1, 0))
  return conv


@pytest.fixture(scope="module")
def narrow_t():
  return _fill(_abstract(TemporalDiscriminator, **NARROW_T), seed=0)


@pytest.fixture(scope="module")
def clip32():
  return jnp.tanh(_np_normal(1, (1, 10, 32, 32, 3)))


@pytest.fixture(scope="module")
def narrow_t_runs(narrow_t, clip32):
  """One jitted eval call, then a train call, on the same state.

  Returns (out_eval, out_train, sn_before, sn_after_eval, sn_after_train).
  """
  graphdef, params, sn = nnx.split(narrow_t, nnx.Param, SpectralState)
  # nnx.state references the live variables: copy to snapshot.
  snapshot = lambda d: jax.tree.map(jnp.copy, nnx.state(d, SpectralState))

  @jax.jit
  def run(params, sn, x):
    d = nnx.merge(graphdef, params, sn)
    out_eval = d(x, update_stats=False)
    after_eval = snapshot(d)
    out_train = d(x, update_stats=True)
    return out_eval, after_eval, out_train, snapshot(d)

  out_eval, after_eval, out_train, after = run(params, sn, clip32)
  return out_eval, out_train, sn, after_eval, after


@pytest.fixture(scope="module")
def patch8():
  return PatchDiscriminator(ndf=8, rngs=_rngs(1))


# ------------------------------------------------------------------ counts


def test_patch_param_count_and_tensors():
  d = _abstract(PatchDiscriminator)
  assert count_params(d) == 2_764_737
  parts = [d.in_conv, *d.layers, d.out_conv]
  want = [3_136, 131_200, 524_544, 2_097_664, 8_193]
  assert [count_params(p) for p in parts] == want
  assert len(jax.tree.leaves(nnx.state(d))) == 10  # torch state_dict size
  assert d.layers[2].kernel.shape == (4, 4, 256, 512)


@pytest.mark.parametrize("resolution", [64, 128])
def test_temporal_param_count_and_stages(resolution):
  d = _abstract(TemporalDiscriminator, resolution=resolution)
  assert count_params(d) == 26_554_369
  assert count_params(d.conv1) == 28_224 and count_params(d.gn1) == 128
  assert count_params(d.layer1) == 193_856
  stage_counts = [count_params(s) for s in d.layers]
  assert stage_counts == [1_549_568, 7_080_448, 8_849_920, 8_849_920]
  assert count_params(d.final) == 2_305
  # Same tensors as the torch state_dict (weight_orig, weight_u, weight_v).
  assert len(jax.tree.leaves(nnx.state(d))) == 132
  assert len(_sn_convs(d)) == 26
  assert len(jax.tree.leaves(nnx.state(d, SpectralState))) == 2 * 26
  assert d.layer1[0].downsample[0].kernel.shape == (3, 3, 3, 64, 32)
  assert d.layers[1][0].conv1.v.shape == (128 * 27,)
  assert d.conv1.kernel.shape == (3, 7, 7, 3, 64)
  assert d.conv1.v.shape == (441,) and d.conv1.u.shape == (64,)
  assert d.layer1[1].downsample is None and d.layers[0][1].downsample is None
  assert d.layers[2][0].downsample is not None  # temporal stride 2


def test_stage_plan_follows_size_tracker():
  assert temporal_stages(64, 10) == [(128, 2), (256, 2), (256, 1), (256, 1)]
  # The tracker halves S/2 down to S/8: always two spatial strides.
  assert temporal_stages(128, 10) == temporal_stages(64, 10)
  assert temporal_stages(256, 10) == temporal_stages(64, 10)
  assert temporal_stages(64, 3) == [(128, 2), (256, 2)]
  assert len(temporal_stages(64, 16)) == 4 and len(temporal_stages(64, 17)) == 5


# ------------------------------------------------------------------ shapes


@pytest.mark.parametrize(
  "size, logits, feats",
  [(64, 6, [16, 8, 7]), (128, 14, [32, 16, 15])],
)
def test_patch_shapes(size, logits, feats):
  d = _abstract(PatchDiscriminator)
  x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  out, fmap = _abstract_call(d, x)
  assert out.shape == (2, logits, logits, 1) and out.dtype == jnp.float32
  assert patch_logits_size(size) == logits
  want = [(2, s, s, c) for s, c in zip(feats, [128, 256, 512])]
  assert [f.shape for f in fmap] == want


@pytest.mark.parametrize("resolution", [64, 128])
def test_temporal_shapes(resolution):
  d = _abstract(TemporalDiscriminator, resolution=resolution)
  x = jax.ShapeDtypeStruct((2, 10, resolution, resolution, 3), jnp.float32)
  out, fmap = _abstract_call(d, x, update_stats=True)
  s = resolution // 4  # after the stem conv and the max pool
  assert out.shape == (2, s // 4, s // 4, 1) and out.dtype == jnp.float32
  want = [
    (2, 10, s, s, 32),
    (2, 5, s // 2, s // 2, 128),
    (2, 3, s // 4, s // 4, 256),
    (2, 2, s // 4, s // 4, 256),
    (2, 1, s // 4, s // 4, 256),
  ]
  assert [f.shape for f in fmap] == want


# ------------------------------------------------------------------ errors


def test_wrong_input_shapes_raise():
  d = _abstract(TemporalDiscriminator, resolution=64)
  call = lambda shape: d(np.zeros(shape, np.float32), update_stats=False)
  with pytest.raises(ValueError, match=r"\(B, 10, 64, 64, 3\)"):
    call((1, 9, 64, 64, 3))
  for shape in [(1, 10, 64, 32, 3), (1, 10, 128, 128, 3), (10, 64, 64, 3)]:
    with pytest.raises(ValueError, match="got shape"):
      call(shape)
  patch = _abstract(PatchDiscriminator)
  with pytest.raises(ValueError, match="H, W >= 24"):
    patch(np.zeros((1, 16, 64, 3), np.float32))
  with pytest.raises(ValueError, match="got shape"):
    patch(np.zeros((1, 64, 64, 4), np.float32))


@pytest.mark.parametrize(
  "kwargs", [dict(resolution=48), dict(resolution=16), dict(num_frames=1)]
)
def test_invalid_config_raises(kwargs):
  kwargs = dict(resolution=64) | kwargs
  with pytest.raises(ValueError, match="resolution|num_frames"):
    _abstract(TemporalDiscriminator, **kwargs)


# ------------------------------------------------------------------ init


def test_sn_conv_orthogonal_init():
  conv = SNConv3d(4, 8, rngs=_rngs(0))
  w = np.asarray(torch_matrix(conv.kernel[...]))  # (O, I*kt*kh*kw)
  np.testing.assert_allclose(w @ w.T, np.eye(8), atol=1e-5)
  for vec in (conv.u[...], conv.v[...]):
    assert abs(float(jnp.linalg.norm(vec)) - 1) < 1e-5
  # Orthonormal filters: W W^T = I, so u is a fixed point and sigma = 1.
  u0 = np.asarray(conv.u[...])
  np.testing.assert_allclose(conv.sigma(update_stats=True), 1, rtol=1e-5)
  np.testing.assert_allclose(conv.u[...], u0, atol=1e-6)


def test_group_norm_config():
  d = _abstract(TemporalDiscriminator, resolution=64)
  for gn in (d.gn1, d.layers[0][0].bn1, d.layer1[0].downsample[1]):
    assert gn.num_groups == 16 and gn.epsilon == 1e-5
    assert not gn.use_fast_variance


def test_patch_torch_default_init(patch8):
  for conv in [patch8.in_conv, *patch8.layers, patch8.out_conv]:
    bound = 1 / math.sqrt(math.prod(conv.kernel.shape[:3]))
    k = np.abs(np.asarray(conv.kernel[...]))
    assert k.max() <= bound and k.max() > 0.8 * bound
    assert np.abs(np.asarray(conv.bias[...])).max() <= bound


# ------------------------------------------------------------ spectral norm


def test_power_step_matches_torch_algorithm():
  w_torch = _np_normal(2, (8, 4, 3, 3, 3))
  conv = _torch_weight_conv(w_torch)
  w = w_torch.reshape(8, -1)  # torch's weight_mat
  u0, v0 = np.asarray(conv.u[...]), np.asarray(conv.v[...])
  # Eval: the stored u, v as they are.
  np.testing.assert_allclose(
    conv.sigma(update_stats=False), u0 @ w @ v0, rtol=1e-5
  )
  np.testing.assert_array_equal(conv.u[...], u0)
  # Train: v = n(W^T u), u = n(W v), sigma = u^T W v; u, v written back.
  v1 = _np_normalize(w.T @ u0)
  u1 = _np_normalize(w @ v1)
  assert np.abs(u1 - u0).max() > 1e-2  # W not orthogonal: u moves
  kernel = conv.normalized_kernel(update_stats=True)
  np.testing.assert_allclose(conv.u[...], u1, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(conv.v[...], v1, rtol=1e-5, atol=1e-6)
  want = w_torch.transpose(2, 3, 4, 1, 0) / (u1 @ w @ v1)
  np.testing.assert_allclose(kernel, want, rtol=1e-5, atol=1e-7)


def test_power_iteration_converges_to_top_singular_pair():
  # A torch weight with a planted spectrum; the layout matters for v.
  rng = np.random.default_rng(0)
  o, n = 8, 4 * 27
  left = np.linalg.qr(rng.normal(size=(o, o)))[0]
  right = np.linalg.qr(rng.normal(size=(n, o)))[0]
  s = np.array([3.0, 2.0, 1.5, 1.0, 0.8, 0.5, 0.3, 0.1])
  w = (left * s) @ right.T
  conv = _torch_weight_conv(w.reshape(o, 4, 3, 3, 3).astype(np.float32))
  step = nnx.jit(lambda c: c.sigma(update_stats=True))
  for _ in range(60):
    sigma = step(conv)
  top = np.linalg.svd(w, compute_uv=False)[0]
  np.testing.assert_allclose(sigma, top, rtol=1e-4)
  # v is the top right singular vector in torch's flattening order.
  assert abs(float(np.dot(conv.v[...], right[:, 0]))) > 0.9999
  assert abs(float(np.dot(conv.u[...], left[:, 0]))) > 0.9999


def test_state_updates_only_with_update_stats(narrow_t_runs):
  out_eval, out_train, before, after_eval, after = narrow_t_runs
  b, a_eval, a = (nnx.to_flat_state(x) for x in (before, after_eval, after))
  assert len(b) == 2 * 26
  for (_, x0), (_, x1), (_, x2) in zip(b, a_eval, a, strict=True):
    np.testing.assert_array_equal(x1[...], x0[...])
    assert np.abs(np.asarray(x2[...]) - np.asarray(x0[...])).max() > 1e-2
  assert not np.allclose(out_eval[0], out_train[0])


def test_no_gradient_into_spectral_state():
  conv = _torch_weight_conv(_np_normal(3, (8, 4, 3, 3, 3)))
  graphdef, params, sn = nnx.split(conv, nnx.Param, SpectralState)
  x = _np_normal(4, (1, 3, 5, 5, 4))
  weights = _np_normal(5, (1, 3, 5, 5, 8))

  def loss(params, sn):
    c = nnx.merge(graphdef, params, sn)
    y = c(x, update_stats=True)
    return jnp.sum(y * weights), nnx.state(c, SpectralState)

  (g_params, g_sn), new_sn = jax.grad(loss, (0, 1), has_aux=True)(params, sn)
  for leaf in jax.tree.leaves(g_sn):
    np.testing.assert_array_equal(leaf, 0)
  # The kernel gradient is that of conv(x, k / (u^T W(k) v)) with the
  # updated u, v held constant (torch computes them under no_grad).
  u, v = new_sn["u"][...], new_sn["v"][...]

  def ref(kernel):
    k = kernel / (u @ torch_matrix(kernel) @ v)
    y = lax.conv_general_dilated(x, k, (1, 1, 1), [(1, 1)] * 3, None, None, DN3)
    return jnp.sum(y * weights)

  want = jax.grad(ref)(params["kernel"][...])
  np.testing.assert_allclose(g_params["kernel"][...], want, atol=1e-5)
  assert np.abs(want).max() > 1e-3


# ------------------------------------------------------------------ forward


def _ref_max_pool(x):
  """MaxPool3d(k3, s(1,2,2), p1) by brute force over the 27 taps."""
  b, t, h, w, c = x.shape
  pad = [(0, 0), (1, 1), (1, 1), (1, 1), (0, 0)]
  p = jnp.pad(x, pad, constant_values=-jnp.inf)
  ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
  out = jnp.full((b, t, ho, wo, c), -jnp.inf, x.dtype)
  for dt in range(3):
    for dh in range(3):
      for dw in range(3):
        tap = p[:, dt : dt + t, dh : dh + 2 * ho : 2, dw : dw + 2 * wo : 2]
        out = jnp.maximum(out, tap)
  return out


def test_max_pool_pads_with_minus_infinity():
  x = -1 - np.abs(_np_normal(7, (1, 4, 7, 6, 2)))  # all negative
  y = jax.jit(max_pool3d)(x)
  assert y.shape == (1, 4, 4, 3, 2)
  assert float(y.max()) < -1  # zero padding would give 0 at the borders
  np.testing.assert_array_equal(y, jax.jit(_ref_max_pool)(x))


def test_max_pool_gradients_and_r1_double_grad():
  # Same first-order gradient as XLA's max pool (no ties in random input).
  x = jnp.asarray(_np_normal(8, (1, 4, 6, 6, 4)))
  window = lambda x: lax.reduce_window(
    x,
    -jnp.inf,
    lax.max,
    (1, 3, 3, 3, 1),
    (1, 1, 2, 2, 1),
    [(0, 0)] + [(1, 1)] * 3 + [(0, 0)],
  )
  g = jax.jit(jax.grad(lambda x: jnp.sum(max_pool3d(x) ** 2)))(x)
  want = jax.jit(jax.grad(lambda x: jnp.sum(window(x) ** 2)))(x)
  np.testing.assert_allclose(g, want, rtol=1e-6)  # summation order
  # R1 differentiates |dD/dx|^2 w.r.t. parameters: SN conv + pool, twice.
  conv = _torch_weight_conv(_np_normal(9, (8, 4, 3, 3, 3)))
  graphdef, params, sn = nnx.split(conv, nnx.Param, SpectralState)

  def r1(params):
    def total(x):
      c = nnx.merge(graphdef, params, sn)
      y = max_pool3d(jax.nn.relu(c(x, update_stats=False)))
      return jnp.sum(y * jnp.arange(y.shape[-1]))

    return jnp.sum(jax.grad(total)(x) ** 2)

  grad = jax.jit(jax.grad(r1))(params)["kernel"][...]
  assert np.isfinite(grad).all() and np.abs(grad).max() > 1e-3


def _ref_group_norm(x, gn):
  shape = x.shape
  g = x.reshape(*shape[:-1], 16, shape[-1] // 16)
  axes = (1, 2, 3, 5)
  mean = g.mean(axes, keepdims=True)
  var = ((g - mean) ** 2).mean(axes, keepdims=True)
  y = ((g - mean) / jnp.sqrt(var + 1e-5)).reshape(shape)
  return y * gn.scale[...] + gn.bias[...]


def _ref_sn_conv(x, conv, strides, sn, pad=(1, 1, 1)):
  """Conv with kernel / (u^T W v) for the given u, v."""
  kernel = conv.kernel[...]
  u, v = sn
  k = kernel / (u @ torch_matrix(kernel) @ v)
  pads = [(p, p) for p in pad]
  return lax.conv_general_dilated(x, k, strides, pads, None, None, DN3)


def _ref_temporal(d, x, sn_of):
  relu = jax.nn.relu
  x = _ref_sn_conv(x, d.conv1, (1, 2, 2), sn_of(d.conv1), (1, 3, 3))
  x = _ref_max_pool(relu(_ref_group_norm(x, d.gn1)))
  feats = []
  for stage, (st, s) in zip([d.layer1, *d.layers], STRIDES_32, strict=True):
    for j, blk in enumerate(stage):
      strides = (st, s, s) if j == 0 else (1, 1, 1)
      y = _ref_sn_conv(x, blk.conv1, strides, sn_of(blk.conv1))
      y = relu(_ref_group_norm(y, blk.bn1))
      y = _ref_sn_conv(y, blk.conv2, (1, 1, 1), sn_of(blk.conv2))
      y = _ref_group_norm(y, blk.bn2)
      skip = x
      if j == 0:  # every first block of the narrow D has a downsample
        conv, gn = blk.downsample
        skip = _ref_group_norm(_ref_sn_conv(x, conv, strides, sn_of(conv)), gn)
      x = relu(y + skip)
    feats.append(x)
  assert x.shape[1] == 1
  logits = lax.conv_general_dilated(
    x[:, 0], d.final.kernel[...], (1, 1), [(1, 1)] * 2, None, None, DN2
  )
  return logits + d.final.bias[...], feats


def test_temporal_matches_reference_forward(narrow_t, clip32, narrow_t_runs):
  out_eval, out_train, before, _, after = narrow_t_runs
  key = lambda path: ".".join(map(str, path))
  paths = {id(m): key(p) for p, m in nnx.iter_graph(narrow_t)}

  @jax.jit
  def ref(x, uv):
    return _ref_temporal(narrow_t, x, lambda conv: uv[paths[id(conv)]])

  # Train mode must use the u, v of its own power step.
  for out, state in ((out_eval, before), (out_train, after)):
    uv = {}
    for path, var in nnx.to_flat_state(state):
      uv.setdefault(key(path[:-1]), {})[path[-1]] = var[...]
    logits, feats = ref(clip32, {k: (d["u"], d["v"]) for k, d in uv.items()})
    np.testing.assert_allclose(out[0], logits, rtol=1e-4, atol=1e-4)
    assert len(out[1]) == len(feats) == 5
    for got, want in zip(out[1], feats):
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  assert out_eval[0].shape == (1, 2, 2, 1)


def test_patch_matches_reference_forward(patch8):
  d = patch8
  x = jnp.tanh(_np_normal(8, (2, 64, 64, 3)))
  logits, feats = nnx.jit(lambda d, x: d(x))(d, x)

  def conv(x, c, stride):
    y = lax.conv_general_dilated(
      x, c.kernel[...], (stride,) * 2, [(1, 1)] * 2, None, None, DN2
    )
    return y + c.bias[...]

  def inorm(y):
    mean = y.mean((1, 2), keepdims=True)
    var = ((y - mean) ** 2).mean((1, 2), keepdims=True)
    return (y - mean) / jnp.sqrt(var + 1e-5)

  lrelu = lambda y: jnp.where(y > 0, y, 0.2 * y)
  y = lrelu(conv(x, d.in_conv, 2))
  want = []
  for c, stride in zip(d.layers, (2, 2, 1)):
    y = lrelu(inorm(conv(y, c, stride)))
    want.append(y)
  for got, ref in zip(feats, want, strict=True):
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
  # FM features are post-LeakyReLU: negatives at slope 0.2, mean > 0.
  assert float(feats[0].min()) < 0 and float(feats[0].mean()) > 0.1
  np.testing.assert_allclose(
    logits, conv(want[-1], d.out_conv, 1), rtol=1e-4, atol=1e-4
  )
  assert logits.shape == (2, 6, 6, 1)


def test_bf16_compute_keeps_float32_params_and_outputs(patch8):
  d16 = _abstract(PatchDiscriminator, ndf=8, dtype=jnp.bfloat16)
  nnx.update(d16, nnx.state(patch8))
  x = jnp.tanh(_np_normal(8, (1, 32, 32, 3)))
  logits, feats = nnx.jit(lambda d, x: d(x))(d16, x)
  assert d16.in_conv.kernel.dtype == jnp.float32
  assert logits.dtype == jnp.float32 and feats[0].dtype == jnp.float32
  ref = nnx.jit(lambda d, x: d(x)[0])(patch8, x)
  np.testing.assert_allclose(logits, ref, atol=0.05)
  assert not np.array_equal(logits, ref)  # really computed in bf16
