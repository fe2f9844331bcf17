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
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
  return ((x - mean) * lax.rsqrt(var + eps)).astype(x_bhwc.dtype)


def conv3x3(x_bhwc: jax.Array, kernel_hwio: jax.Array, dtype) -> jax.Array:
  """Stride-1 3x3 conv with padding 1 and no bias, computed in `dtype`.

  Args:
    x_bhwc: (B, H, W, I) input.
    kernel_hwio: (3, 3, I, O) kernel.
    dtype: compute dtype.

  Returns:
    (B, H, W, O) in `dtype`.
  """
  return lax.conv_general_dilated(
    x_bhwc.astype(dtype),
    kernel_hwio.astype(dtype),
    (1, 1),
    PAD_1,
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )


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


def make_conv_up(
  in_ch: int, out_ch: int, *, dtype, rngs: nnx.Rngs, **init
) -> nnx.ConvTranspose:
  """torch ConvTranspose2d(k3, s2, p1, op1): (B,H,W,I) -> (B,2H,2W,O).

  The kernel is (3, 3, O, I), the torch weight permuted by (2, 3, 1, 0).
  torch's fan_in for a transposed conv is O * 9; variance_scaling reads it
  from axis -2, which is O in this layout.
  """
  init.setdefault("kernel_init", torch_kernel_init)
  init.setdefault("bias_init", torch_bias_init(out_ch * 9))
  return nnx.ConvTranspose(
    in_ch,
    out_ch,
    (3, 3),
    strides=(2, 2),
    padding=PAD_UP,
    transpose_kernel=True,
    dtype=dtype,
    rngs=rngs,
    **init,
  )


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
    y = self.conv(x_bhwc)
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
