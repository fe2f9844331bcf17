"""Building blocks of the II2V generator (REFERENCE.md §3), NHWC layout.

Every conv is 3x3 with explicit symmetric padding, so stride-2 convs match
torch (Flax 'SAME' pads (0, 1) at stride 2). Parameters are stored in float32;
`dtype` is the compute dtype that inputs and kernels are cast to.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from ii2v_jax.models import winograd

PAD_1 = ((1, 1), (1, 1))
# torch ConvTranspose2d(k3, s2, p1, output_padding 1): (k-1-p, k-1-p+op).
PAD_UP = ((1, 2), (1, 2))
IN_EPS = 1e-5

# torch kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in)).
torch_kernel_init = nnx.initializers.variance_scaling(
  1 / 3, "fan_in", "uniform"
)

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
  "elu": jax.nn.elu,
  "relu": jax.nn.relu,
  "tanh": jnp.tanh,
  "none": lambda x: x,
}


def torch_bias_init(fan_in: int) -> nnx.Initializer:
  """Returns torch's default bias init, U(+-1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def _mean_hw(x_bhwc: jax.Array) -> jax.Array:
  """Mean over (H, W), rows first: two short float32 sums instead of one
  of H*W terms, which XLA:CPU's loop emitter accumulates in order (at 128 px
  that alone cost 1e-4 of parity with torch)."""
  return jnp.mean(
    jnp.mean(x_bhwc, axis=2, keepdims=True), axis=1, keepdims=True
  )


def instance_norm(x_bhwc: jax.Array, eps: float = IN_EPS) -> jax.Array:
  """InstanceNorm2d without affine or running stats.

  Args:
    x_bhwc: (B, H, W, C) features.
    eps: added to the biased variance over (H, W).

  Returns:
    (B, H, W, C), normalised per sample and channel, in the input dtype.
  """
  # Statistics in float32: bf16 means and variances are too coarse.
  x = x_bhwc.astype(jnp.float32)
  # Shifting by one pixel per (sample, channel) changes nothing exactly but
  # keeps float32 sums accurate on maps with a large common offset (the
  # sparse poke map's bias): torch sums in double there (parity at 128 px).
  x = x - lax.stop_gradient(x[:, :1, :1, :])
  mean = _mean_hw(x)
  var = _mean_hw(jnp.square(x - mean))
  return ((x - mean) * lax.rsqrt(var + eps)).astype(x_bhwc.dtype)


def conv3x3(
  x_bhwc: jax.Array, kernel_hwio: jax.Array, dtype, u_44io=None
) -> jax.Array:
  """Stride-1 3x3 conv with padding 1 and no bias, computed in `dtype`.

  Args:
    x_bhwc: (B, H, W, I) input.
    kernel_hwio: (3, 3, I, O) kernel.
    dtype: compute dtype.
    u_44io: `winograd.kernel_transform(kernel)` when the caller keeps it
      (a loop over the same weights); computed here otherwise.

  Returns:
    (B, H, W, O) in `dtype`.
  """
  x, k = x_bhwc.astype(dtype), kernel_hwio.astype(dtype)
  if not winograd.applies(x, k, kernel_reused=u_44io is not None):
    return winograd.direct(x, k)
  if u_44io is None:
    u_44io = winograd.kernel_transform(k)
  return winograd.conv3x3(x, k, u_44io)


def apply_conv(conv: nnx.Conv, x_bhwc: jax.Array) -> jax.Array:
  """`conv(x)` of a `make_conv` conv; stride 1 goes through `conv3x3`."""
  if conv.strides not in (1, (1, 1)):
    return conv(x_bhwc)
  dtype = conv.dtype or jnp.result_type(x_bhwc, conv.kernel[...])
  y = conv3x3(x_bhwc, conv.kernel[...], dtype)
  return y + conv.bias[...].astype(y.dtype)


def make_conv(
  in_ch: int, out_ch: int, *, stride: int = 1, dtype, rngs: nnx.Rngs, **init
) -> nnx.Conv:
  """3x3 conv with padding 1 and bias; torch default init unless overridden."""
  init.setdefault("kernel_init", torch_kernel_init)
  init.setdefault("bias_init", torch_bias_init(in_ch * 9))
  return nnx.Conv(
    in_ch,
    out_ch,
    (3, 3),
    strides=stride,
    padding=PAD_1,
    dtype=dtype,
    rngs=rngs,
    **init,
  )


def conv_transpose_up(x_bhwi, kernel_hwoi, bias_o, dtype) -> jax.Array:
  """torch ConvTranspose2d(k3, s2, p1, op1): (B,H,W,I) -> (B,2H,2W,O).

  torch writes x[m] to y[2m - 1 + k], so even outputs take tap 1 of x[m] and
  odd outputs taps 2 of x[m] and 0 of x[m+1]. Each of the four output phases
  is then a small stride-1 conv over x (1x1, 1x2, 2x1 and 2x2 taps), followed
  by depth-to-space. This avoids the input-dilated conv, which spends 3/4 of
  its multiplies on inserted zeros and differentiates slowly on CPU, and a
  single 2x2 conv over all phases, 7 of whose 16 tap blocks are zero.
  """
  b, h, w, _ = x_bhwi.shape
  o = kernel_hwoi.shape[2]
  x = x_bhwi.astype(dtype)
  k = kernel_hwoi.astype(dtype)

  def tap(kh, kw):  # (I, O)
    return k[kh, kw].T

  def conv(kernel_hwio, pad):
    return lax.conv_general_dilated(
      x, kernel_hwio, (1, 1), pad, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )

  even_even = jnp.einsum("bhwi,io->bhwo", x, tap(1, 1))
  even_odd = conv(jnp.stack([tap(1, 2), tap(1, 0)])[None], ((0, 0), (0, 1)))
  odd_even = conv(jnp.stack([tap(2, 1), tap(0, 1)])[:, None], ((0, 1), (0, 0)))
  odd_odd = conv(
    jnp.stack(
      [
        jnp.stack([tap(2, 2), tap(2, 0)]),
        jnp.stack([tap(0, 2), tap(0, 0)]),
      ]
    ),
    ((0, 1), (0, 1)),
  )
  even = jnp.stack([even_even, even_odd], axis=3)  # (B, H, W, 2, O)
  odd = jnp.stack([odd_even, odd_odd], axis=3)
  y = jnp.stack([even, odd], axis=2)  # (B, H, 2, W, 2, O)
  return y.reshape(b, 2 * h, 2 * w, o) + bias_o.astype(dtype)


class ConvUp(nnx.Module):
  """x2 up-sampling transposed conv with Flax ConvTranspose's parameters.

  `kernel` is (3, 3, O, I), the torch weight permuted by (2, 3, 1, 0), as
  for `nnx.ConvTranspose(..., transpose_kernel=True)`; `bias` is (O,).
  """

  def __init__(self, in_ch, out_ch, *, kernel_init, bias_init, dtype, rngs):
    key = rngs.params()
    self.kernel = nnx.Param(kernel_init(key, (3, 3, out_ch, in_ch)))
    self.bias = nnx.Param(bias_init(rngs.params(), (out_ch,)))
    self.dtype = dtype

  def __call__(self, x_bhwi: jax.Array) -> jax.Array:
    return conv_transpose_up(x_bhwi, self.kernel, self.bias, self.dtype)


def make_conv_up(
  in_ch: int, out_ch: int, *, dtype, rngs: nnx.Rngs, **init
) -> ConvUp:
  """torch ConvTranspose2d(k3, s2, p1, op1): (B,H,W,I) -> (B,2H,2W,O).

  The kernel is (3, 3, O, I), the torch weight permuted by (2, 3, 1, 0).
  torch's fan_in for a transposed conv is O * 9; variance_scaling reads it
  from axis -2, which is O in this layout.
  """
  init.setdefault("kernel_init", torch_kernel_init)
  init.setdefault("bias_init", torch_bias_init(out_ch * 9))
  return ConvUp(in_ch, out_ch, dtype=dtype, rngs=rngs, **init)


class Conv2dBlock(nnx.Module):
  """Conv3x3 (pad 1, bias) -> optional InstanceNorm -> activation."""

  def __init__(
    self,
    in_ch: int,
    out_ch: int,
    *,
    stride: int = 1,
    norm: bool = True,
    activation: str = "elu",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.conv = make_conv(in_ch, out_ch, stride=stride, dtype=dtype, rngs=rngs)
    self.norm = norm
    self.activation = activation

  def __call__(self, x_bhwc: jax.Array) -> jax.Array:
    """(B, H, W, I) -> (B, H/stride, W/stride, O)."""
    y = apply_conv(self.conv, x_bhwc)
    if self.norm:
      y = instance_norm(y)
    return ACTIVATIONS[self.activation](y)


class Conv2dTransposeBlock(nnx.Module):
  """ConvTranspose3x3 s2 -> InstanceNorm -> ReLU.

  ReLU, not ELU: the reference builds a ReLU for the name "elu" in this class
  and its checkpoints depend on it (REFERENCE §3, §11.9).
  """

  def __init__(
    self, in_ch: int, out_ch: int, *, dtype=jnp.float32, rngs: nnx.Rngs
  ):
    self.conv = make_conv_up(in_ch, out_ch, dtype=dtype, rngs=rngs)

  def __call__(self, x_bhwc: jax.Array) -> jax.Array:
    """(B, H, W, I) -> (B, 2H, 2W, O)."""
    return jax.nn.relu(instance_norm(self.conv(x_bhwc)))


class ResBlock(nnx.Module):
  """out = conv2(conv1(x)) + skip(x), with no activation after the sum.

  The skip is a full 3x3 block of the same kind as conv1 when the width,
  stride or resolution changes, else the identity (`res_conv` is None).
  """

  def __init__(
    self,
    dim_in: int,
    dim_out: int,
    *,
    upsampling: bool = False,
    stride: int = 1,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    def first_block():
      if upsampling:
        return Conv2dTransposeBlock(dim_in, dim_out, dtype=dtype, rngs=rngs)
      return Conv2dBlock(dim_in, dim_out, stride=stride, dtype=dtype, rngs=rngs)

    self.conv1 = first_block()
    self.conv2 = Conv2dBlock(
      dim_out, dim_out, activation="none", dtype=dtype, rngs=rngs
    )
    needs_conv = dim_in != dim_out or upsampling or stride != 1
    self.res_conv = first_block() if needs_conv else None

  def __call__(self, x_bhwc: jax.Array) -> jax.Array:
    """(B, H, W, I) -> (B, H', W', O); H' = H/stride, or 2H if upsampling."""
    y = self.conv2(self.conv1(x_bhwc))
    skip = x_bhwc if self.res_conv is None else self.res_conv(x_bhwc)
    return y + skip.astype(y.dtype)
