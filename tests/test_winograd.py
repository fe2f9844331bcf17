"""The Winograd-form 3x3 conv equals the direct conv (forward and gradient)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ii2v_jax.models import layers, winograd


def _inputs(b, s, i, o, seed=0):
  kx, kw = jax.random.split(jax.random.key(seed))
  x = jax.random.normal(kx, (b, s, s, i))
  w = jax.random.normal(kw, (3, 3, i, o)) / np.sqrt(9 * i)
  return x, w


@pytest.mark.parametrize("shape", [(1, 16, 64, 96), (3, 8, 5, 7), (2, 2, 3, 4)])
def test_forward_equals_direct_within_float32_rounding(shape):
  x, w = _inputs(*shape)
  ours = winograd.conv3x3(x, w, winograd.kernel_transform(w))
  ref = winograd.direct(x, w)
  scale = float(jnp.max(jnp.abs(ref)))
  np.testing.assert_allclose(ours, ref, atol=2e-6 * max(1.0, scale))
  assert not np.array_equal(ours, ref)  # It is a different computation.


def test_gradient_is_the_direct_convs():
  x, w = _inputs(2, 8, 6, 5)
  g = jax.random.normal(jax.random.key(3), (2, 8, 8, 5))

  def grads(conv):
    return jax.grad(lambda x, w: jnp.sum(conv(x, w) * g), (0, 1))(x, w)

  def transformed_outside(x, w):  # As the ConvGRU does it.
    return winograd.conv3x3(x, w, winograd.kernel_transform(w))

  for ours, ref in zip(grads(transformed_outside), grads(winograd.direct)):
    np.testing.assert_array_equal(ours, ref)


def test_odd_sizes_bf16_and_small_maps_take_the_direct_conv():
  x, w = _inputs(1, 7, 4, 4)
  wide = jnp.zeros((3, 3, 4, 128))
  assert not winograd.applies(x, wide, kernel_reused=True)
  even = x[:, :6, :6]
  bf16 = even.astype(jnp.bfloat16)
  assert not winograd.applies(
    bf16, wide.astype(jnp.bfloat16), kernel_reused=True
  )
  assert not winograd.applies(even, wide, kernel_reused=True)  # 4 inputs.
  wide = jnp.zeros((3, 3, 128, 128))
  assert winograd.applies(jnp.zeros((1, 6, 6, 128)), wide, kernel_reused=True)
  # A small map transforms its kernel per call only when that pays off.
  assert not winograd.applies(jnp.zeros((1, 6, 6, 128)), wide)
  assert winograd.applies(jnp.zeros((8, 16, 16, 128)), wide)
  np.testing.assert_array_equal(
    layers.conv3x3(x, w, jnp.float32), winograd.direct(x, w)
  )


def test_apply_conv_equals_the_flax_conv():
  x, _ = _inputs(2, 8, 6, 5)
  conv = layers.make_conv(6, 5, dtype=jnp.float32, rngs=nnx.Rngs(1))
  np.testing.assert_allclose(layers.apply_conv(conv, x), conv(x), atol=1e-5)
  strided = layers.make_conv(
    6, 5, stride=2, dtype=jnp.float32, rngs=nnx.Rngs(1)
  )
  np.testing.assert_array_equal(layers.apply_conv(strided, x), strided(x))


def test_convgru_step_equals_the_direct_one(monkeypatch):
  from ii2v_jax.models.convgru import ConvGRU

  gru = ConvGRU(128, [128, 128], [False, True], rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 128))
  hs = [jnp.zeros((2, 8, 8, 128)), 0.1 * jnp.ones((2, 16, 16, 128))]
  kerns = gru.kernels()
  assert {"x_winograd", "zr_winograd", "o_winograd"} <= set(kerns[1])
  ours = gru.step(kerns, hs, x_bhwc=x)
  monkeypatch.setattr(winograd, "ENABLED", False)
  plain_kerns = gru.kernels()
  assert "zr_winograd" not in plain_kerns[1]
  for a, b in zip(ours, gru.step(plain_kerns, hs, x_bhwc=x), strict=True):
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.array_equal(a, b)
