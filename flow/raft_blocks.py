"""Building blocks of RAFT (Teed & Deng, ECCV 2020), NHWC layout.

Module and attribute names follow torchvision's `optical_flow.raft` (a
torch `Conv2dNormActivation` becomes a `ConvNorm` with `conv` and `norm`)
so that `flow.raft_convert` maps checkpoints by a mechanical rule. All
layers are inference-only: batch norm uses its running statistics, as
RAFT's training recipe freezes it after the first stage.
"""

import jax
import jax.numpy as jnp
from flax import nnx

NORM_EPS = 1e-5


def instance_norm(x_nhwc: jax.Array, eps: float = NORM_EPS) -> jax.Array:
  """Torch `InstanceNorm2d()` (no affine, no running stats), (N,H,W,C)."""
  mean = jnp.mean(x_nhwc, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x_nhwc - mean), axis=(1, 2), keepdims=True)
  return (x_nhwc - mean) * jax.lax.rsqrt(var + eps)


def make_conv(
  in_ch: int,
  out_ch: int,
  kernel: int | tuple[int, int],
  *,
  stride: int = 1,
  precision=None,
  rngs: nnx.Rngs,
) -> nnx.Conv:
  """Torch-style conv with bias and 'same' padding (k - 1) // 2 per side."""
  kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
  pad = (((kh - 1) // 2,) * 2, ((kw - 1) // 2,) * 2)
  return nnx.Conv(
    in_ch,
    out_ch,
    (kh, kw),
    stride,
    padding=pad,
    precision=precision,
    rngs=rngs,
  )


class ConvNorm(nnx.Module):
  """Conv, optional norm ("batch", "instance" or None), optional ReLU."""

  def __init__(
    self,
    in_ch: int,
    out_ch: int,
    kernel: int | tuple[int, int],
    *,
    stride: int = 1,
    norm: str | None = None,
    relu: bool = True,
    precision=None,
    rngs: nnx.Rngs,
  ):
    if norm not in (None, "batch", "instance"):
      raise ValueError(f"unknown norm {norm!r}")
    self.conv = make_conv(
      in_ch, out_ch, kernel, stride=stride, precision=precision, rngs=rngs
    )
    self.norm_kind = norm
    self.relu = relu
    self.norm = (
      nnx.BatchNorm(
        out_ch, use_running_average=True, epsilon=NORM_EPS, rngs=rngs
      )
      if norm == "batch"
      else None
    )

  def __call__(self, x_nhwc: jax.Array) -> jax.Array:
    """(N, H, W, in_ch) -> (N, H / stride, W / stride, out_ch)."""
    y = self.conv(x_nhwc)
    if self.norm is not None:
      y = self.norm(y)
    elif self.norm_kind == "instance":
      y = instance_norm(y)
    return jax.nn.relu(y) if self.relu else y


class ResidualBlock(nnx.Module):
  """Two 3x3 ConvNorms plus a (projected when strided) skip, then ReLU."""

  def __init__(self, in_ch, out_ch, *, norm, stride=1, precision, rngs):
    kw = dict(norm=norm, precision=precision, rngs=rngs)
    self.convnormrelu1 = ConvNorm(in_ch, out_ch, 3, stride=stride, **kw)
    self.convnormrelu2 = ConvNorm(out_ch, out_ch, 3, **kw)
    self.downsample = (
      ConvNorm(in_ch, out_ch, 1, stride=stride, relu=False, **kw)
      if stride != 1
      else None
    )

  def __call__(self, x_nhwc: jax.Array) -> jax.Array:
    y = self.convnormrelu2(self.convnormrelu1(x_nhwc))
    if self.downsample is not None:
      x_nhwc = self.downsample(x_nhwc)
    return jax.nn.relu(x_nhwc + y)


class BottleneckBlock(nnx.Module):
  """1x1 -> 3x3 (strided) -> 1x1 ConvNorms at width out/4, skip, ReLU."""

  def __init__(self, in_ch, out_ch, *, norm, stride=1, precision, rngs):
    kw = dict(norm=norm, precision=precision, rngs=rngs)
    mid = out_ch // 4
    self.convnormrelu1 = ConvNorm(in_ch, mid, 1, **kw)
    self.convnormrelu2 = ConvNorm(mid, mid, 3, stride=stride, **kw)
    self.convnormrelu3 = ConvNorm(mid, out_ch, 1, **kw)
    self.downsample = (
      ConvNorm(in_ch, out_ch, 1, stride=stride, relu=False, **kw)
      if stride != 1
      else None
    )

  def __call__(self, x_nhwc: jax.Array) -> jax.Array:
    y = self.convnormrelu1(x_nhwc)
    y = self.convnormrelu3(self.convnormrelu2(y))
    if self.downsample is not None:
      x_nhwc = self.downsample(x_nhwc)
    return jax.nn.relu(x_nhwc + y)


BLOCKS = {"residual": ResidualBlock, "bottleneck": BottleneckBlock}


class Encoder(nnx.Module):
  """Feature / context encoder: 7x7/2 stem, three block pairs, 1x1 conv.

  `widths` = (stem, layer1, layer2, layer3, output); strides 2, 1, 2, 2,
  so the output has 1/8 of the input resolution.
  """

  def __init__(self, widths, *, block, norm, precision=None, rngs):
    kw = dict(norm=norm, precision=precision, rngs=rngs)
    self.convnormrelu = ConvNorm(3, widths[0], 7, stride=2, **kw)
    cls = BLOCKS[block]
    layers = []
    for i, stride in enumerate((1, 2, 2)):
      first = cls(widths[i], widths[i + 1], stride=stride, **kw)
      layers.append(nnx.List([first, cls(widths[i + 1], widths[i + 1], **kw)]))
    self.layer1, self.layer2, self.layer3 = layers
    self.conv = make_conv(
      widths[3], widths[4], 1, precision=precision, rngs=rngs
    )

  def __call__(self, x_nhwc: jax.Array) -> jax.Array:
    """(N, H, W, 3) in [-1, 1] -> (N, H/8, W/8, widths[4])."""
    x = self.convnormrelu(x_nhwc)
    for layer in (self.layer1, self.layer2, self.layer3):
      for block in layer:
        x = block(x)
    return self.conv(x)


class MotionEncoder(nnx.Module):
  """Encodes correlation features and the current flow; appends the flow."""

  def __init__(
    self, corr_ch, corr_widths, flow_widths, out_ch, *, precision, rngs
  ):
    kw = dict(precision=precision, rngs=rngs)
    self.convcorr1 = ConvNorm(corr_ch, corr_widths[0], 1, **kw)
    self.convcorr2 = (
      ConvNorm(corr_widths[0], corr_widths[1], 3, **kw)
      if len(corr_widths) == 2
      else None
    )
    self.convflow1 = ConvNorm(2, flow_widths[0], 7, **kw)
    self.convflow2 = ConvNorm(flow_widths[0], flow_widths[1], 3, **kw)
    cat_ch = corr_widths[-1] + flow_widths[-1]
    self.conv = ConvNorm(cat_ch, out_ch - 2, 3, **kw)

  def __call__(self, flow_nhw2: jax.Array, corr_nhwk: jax.Array) -> jax.Array:
    """(N,h,w,2), (N,h,w,K) -> (N,h,w,out_ch) whose last 2 are the flow."""
    corr = self.convcorr1(corr_nhwk)
    if self.convcorr2 is not None:
      corr = self.convcorr2(corr)
    flow = self.convflow2(self.convflow1(flow_nhw2))
    out = self.conv(jnp.concatenate([corr, flow], axis=-1))
    return jnp.concatenate([out, flow_nhw2], axis=-1)


class ConvGRU(nnx.Module):
  """Convolutional GRU cell over [h; x] with one kernel shape."""

  def __init__(self, input_size, hidden_size, kernel, *, precision, rngs):
    kw = dict(precision=precision, rngs=rngs)
    n_in = input_size + hidden_size
    self.convz = make_conv(n_in, hidden_size, kernel, **kw)
    self.convr = make_conv(n_in, hidden_size, kernel, **kw)
    self.convq = make_conv(n_in, hidden_size, kernel, **kw)

  def __call__(self, h_nhwc: jax.Array, x_nhwc: jax.Array) -> jax.Array:
    """(N,h,w,hidden), (N,h,w,input) -> new hidden state (N,h,w,hidden)."""
    hx = jnp.concatenate([h_nhwc, x_nhwc], axis=-1)
    z = jax.nn.sigmoid(self.convz(hx))
    r = jax.nn.sigmoid(self.convr(hx))
    q = jnp.tanh(self.convq(jnp.concatenate([r * h_nhwc, x_nhwc], axis=-1)))
    return (1 - z) * h_nhwc + z * q


class RecurrentBlock(nnx.Module):
  """One ConvGRU, or two in sequence (RAFT-large's separable 1x5, 5x1)."""

  def __init__(self, input_size, hidden_size, kernels, *, precision, rngs):
    kw = dict(precision=precision, rngs=rngs)
    self.convgru1 = ConvGRU(input_size, hidden_size, kernels[0], **kw)
    self.convgru2 = (
      ConvGRU(input_size, hidden_size, kernels[1], **kw)
      if len(kernels) == 2
      else None
    )

  def __call__(self, h_nhwc: jax.Array, x_nhwc: jax.Array) -> jax.Array:
    h_nhwc = self.convgru1(h_nhwc, x_nhwc)
    if self.convgru2 is not None:
      h_nhwc = self.convgru2(h_nhwc, x_nhwc)
    return h_nhwc


class FlowHead(nnx.Module):
  """3x3 conv, ReLU, 3x3 conv to the 2-channel flow update."""

  def __init__(self, in_ch, hidden, *, precision, rngs):
    kw = dict(precision=precision, rngs=rngs)
    self.conv1 = make_conv(in_ch, hidden, 3, **kw)
    self.conv2 = make_conv(hidden, 2, 3, **kw)

  def __call__(self, h_nhwc: jax.Array) -> jax.Array:
    """(N, h, w, in_ch) -> (N, h, w, 2) delta flow in 1/8-res pixels."""
    return self.conv2(jax.nn.relu(self.conv1(h_nhwc)))


class UpdateBlock(nnx.Module):
  """Motion encoder -> recurrent block -> flow head."""

  def __init__(self, motion_encoder, recurrent_block, flow_head):
    self.motion_encoder = motion_encoder
    self.recurrent_block = recurrent_block
    self.flow_head = flow_head

  def __call__(self, h_nhwc, context_nhwc, corr_nhwk, flow_nhw2):
    """Returns the new hidden state and the delta flow (N, h, w, 2)."""
    motion = self.motion_encoder(flow_nhw2, corr_nhwk)
    x = jnp.concatenate([context_nhwc, motion], axis=-1)
    h_nhwc = self.recurrent_block(h_nhwc, x)
    return h_nhwc, self.flow_head(h_nhwc)


class MaskPredictor(nnx.Module):
  """Convex-upsampling weights, 9 x 8 x 8 logits per 1/8-res pixel.

  The 0.25 factor is RAFT's (it only rescales gradients in training) and
  is part of the released weights' behaviour.
  """

  def __init__(self, in_ch, hidden, *, precision, rngs):
    kw = dict(precision=precision, rngs=rngs)
    self.convrelu = ConvNorm(in_ch, hidden, 3, **kw)
    self.conv = make_conv(hidden, 8 * 8 * 9, 1, **kw)

  def __call__(self, h_nhwc: jax.Array) -> jax.Array:
    """(N, h, w, in_ch) -> (N, h, w, 576) mask logits."""
    return 0.25 * self.conv(self.convrelu(h_nhwc))
