"""The two II2V discriminators (REFERENCE.md §4.3, §5.3, §7.3), NHWC layout.

Submodule names follow the torch state_dict prefixes (`layers.0.1.bn2` ->
`layers[0][1].bn2`), so a checkpoint converter is a rename plus a kernel
permute. Parameters are float32; `dtype` is the compute dtype. Logits and
feature-matching features are returned in float32.

The temporal D's spectral-norm vectors are `SpectralState` variables, not
`nnx.Param`: split them off with
`nnx.split(d, nnx.Param, SpectralState)` and carry them as mutable state.
"""

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from ii2v_jax.models.layers import (
  PAD_1,
  instance_norm,
  torch_bias_init,
  torch_kernel_init,
)
from ii2v_jax.models.spectral_norm import SNConv3d, SpectralState

__all__ = [
  "PatchDiscriminator",
  "SpectralState",
  "TemporalDiscriminator",
  "max_pool3d",
  "patch_logits_size",
  "temporal_stages",
]

LEAKY_SLOPE = 0.2
GN_GROUPS = 16
GN_EPS = 1e-5
PATCH_STRIDES = (2, 2, 2, 1, 1)  # in_conv, layers[0..2], out_conv


def patch_logits_size(size: int) -> int:
  """Logit-map side of the Patch D for an input side `size`."""
  for stride in PATCH_STRIDES:
    # torch Conv2d(k4, p1): floor((n + 2 - 4) / s) + 1.
    size = (size - 2) // stride + 1
  return size


def _conv4x4(in_ch, out_ch, stride, *, dtype, rngs) -> nnx.Conv:
  return nnx.Conv(
    in_ch,
    out_ch,
    (4, 4),
    strides=stride,
    padding=PAD_1,
    kernel_init=torch_kernel_init,
    bias_init=torch_bias_init(in_ch * 16),
    dtype=dtype,
    rngs=rngs,
  )


class PatchDiscriminator(nnx.Module):
  """pix2pix PatchGAN, n_layers = 3, InstanceNorm, all convs with bias.

  Attributes:
    in_conv: Conv4x4 s2, in_ch -> ndf, LeakyReLU 0.2, no norm.
    layers: Conv4x4 s2 / s2 / s1 to 2, 4, 8 ndf, each + IN + LeakyReLU.
    out_conv: Conv4x4 s1 -> 1 (the logits).
  """

  def __init__(
    self,
    *,
    in_ch: int = 3,
    ndf: int = 64,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.in_ch = in_ch
    kw = dict(dtype=dtype, rngs=rngs)
    chans = [ndf, 2 * ndf, 4 * ndf, 8 * ndf]
    strides = PATCH_STRIDES[1:4]
    self.in_conv = _conv4x4(in_ch, ndf, PATCH_STRIDES[0], **kw)
    self.layers = nnx.List(
      [
        _conv4x4(a, b, s, **kw)
        for a, b, s in zip(chans[:-1], chans[1:], strides)
      ]
    )
    self.out_conv = _conv4x4(chans[-1], 1, PATCH_STRIDES[-1], **kw)

  def __call__(self, x_bhwc: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    """Scores image patches.

    Args:
      x_bhwc: (B, H, W, in_ch) images in [-1, 1]; H, W >= 24.

    Returns:
      logits (B, h, w, 1) (6x6 at 64, 14x14 at 128) and the feature-matching
      features: the three post-IN, post-LeakyReLU activations (as the
      reference appends them), all float32.
    """
    shape = tuple(x_bhwc.shape)
    if (
      len(shape) != 4
      or shape[-1] != self.in_ch
      or min(patch_logits_size(shape[1]), patch_logits_size(shape[2])) < 1
    ):
      raise ValueError(
        f"PatchDiscriminator expects (B, H, W, {self.in_ch}) images with "
        f"H, W >= 24, got shape {shape}"
      )
    x = jax.nn.leaky_relu(self.in_conv(x_bhwc), LEAKY_SLOPE)
    feats = []
    for conv in self.layers:
      x = jax.nn.leaky_relu(instance_norm(conv(x)), LEAKY_SLOPE)
      feats.append(x)
    logits = self.out_conv(x)
    return logits.astype(jnp.float32), [f.astype(jnp.float32) for f in feats]


def max_pool3d(x_bthwc: jax.Array) -> jax.Array:
  """torch MaxPool3d(k3, s(1, 2, 2), p1) on (B, T, H, W, C).

  torch pads max pooling with -inf: the padding never wins. Written as
  elementwise maxima of strided slices, one axis at a time (a box max is
  separable), because reduce_window's max has no second-order reverse rule
  and the R1 penalty differentiates D's input gradient.
  """
  pad = ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0))
  x = jnp.pad(x_bthwc, pad, constant_values=-jnp.inf)
  for axis, stride in ((1, 1), (2, 2), (3, 2)):
    n = (x.shape[axis] - 3) // stride + 1
    taps = [
      lax.slice_in_dim(x, k, k + stride * (n - 1) + 1, stride, axis)
      for k in range(3)
    ]
    x = jnp.maximum(jnp.maximum(taps[0], taps[1]), taps[2])
  return x


def _group_norm(channels: int, *, dtype, rngs) -> nnx.GroupNorm:
  # torch GroupNorm: eps 1e-5 (Flax default 1e-6), E[(x - mean)^2].
  return nnx.GroupNorm(
    channels,
    num_groups=GN_GROUPS,
    epsilon=GN_EPS,
    use_fast_variance=False,
    dtype=dtype,
    rngs=rngs,
  )


def temporal_stages(
  resolution: int,
  num_frames: int,
  *,
  base_channels: int = 64,
  max_channels: int = 256,
) -> list[tuple[int, int]]:
  """(channels, spatial stride) of each temporal-D stage after layer1.

  One stage per halving of T (temporal stride 2, ceil(T / 2) each). The
  spatial stride follows the reference's size tracker, which starts at S/2
  (the real map is S/4 after the stem) and stops striding at S/8.
  """
  stages, ch, t = [], base_channels, num_frames
  size, min_size = resolution / 2, int(resolution / 8)
  while t > 1:
    ch = min(2 * ch, max_channels)
    stride = 1 if size <= min_size else 2
    size = int(size / stride)
    stages.append((ch, stride))
    t = -(-t // 2)
  return stages


class BasicBlock(nnx.Module):
  """3D ResNet block: conv1 -> bn1 -> ReLU -> conv2 -> bn2 -> + skip -> ReLU.

  `bn*` are GroupNorms (torch names). `downsample` is [SN conv 3x3x3, GN]
  (torch `downsample.0`, `.1`) when the width or a stride changes, else None
  (identity skip).
  """

  def __init__(
    self,
    in_ch: int,
    out_ch: int,
    *,
    stride: int = 1,
    stride_t: int = 1,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    kw = dict(dtype=dtype, rngs=rngs)
    strides = (stride_t, stride, stride)
    self.conv1 = SNConv3d(in_ch, out_ch, strides=strides, **kw)
    self.bn1 = _group_norm(out_ch, **kw)
    self.conv2 = SNConv3d(out_ch, out_ch, **kw)
    self.bn2 = _group_norm(out_ch, **kw)
    needs_conv = in_ch != out_ch or stride != 1 or stride_t != 1
    self.downsample = (
      nnx.List(
        [
          SNConv3d(in_ch, out_ch, strides=strides, **kw),
          _group_norm(out_ch, **kw),
        ]
      )
      if needs_conv
      else None
    )

  def __call__(self, x_bthwc: jax.Array, *, update_stats: bool) -> jax.Array:
    """(B, T, H, W, I) -> (B, ceil(T/st), ceil(H/s), ceil(W/s), O)."""
    y = jax.nn.relu(self.bn1(self.conv1(x_bthwc, update_stats=update_stats)))
    y = self.bn2(self.conv2(y, update_stats=update_stats))
    skip = x_bthwc
    if self.downsample is not None:
      conv, norm = self.downsample
      skip = norm(conv(x_bthwc, update_stats=update_stats))
    return jax.nn.relu(y + skip.astype(y.dtype))


def _make_layer(in_ch, out_ch, *, stride, stride_t, dtype, rngs) -> nnx.List:
  kw = dict(dtype=dtype, rngs=rngs)
  first = BasicBlock(in_ch, out_ch, stride=stride, stride_t=stride_t, **kw)
  return nnx.List([first, BasicBlock(out_ch, out_ch, **kw)])


class TemporalDiscriminator(nnx.Module):
  """Unconditional 3D-ResNet-18-style video discriminator.

  Every Conv3d is bias-free, spectral-normalised and orthogonally
  initialised; norms are GroupNorm(16, eps 1e-5); activations ReLU.

  Attributes:
    conv1, gn1: stem SN-conv 3 -> base, k(3,7,7), s(1,2,2), p(1,3,3), + GN;
      then ReLU and max_pool3d.
    layer1: 2 BasicBlocks base -> base/2, no strides.
    layers: one 2-block stage per halving of T (`temporal_stages`).
    final: Conv2d 3x3 p1 (with bias) on the T = 1 map -> logits.
  """

  def __init__(
    self,
    *,
    resolution: int,
    num_frames: int = 10,
    base_channels: int = 64,
    max_channels: int = 256,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    ok = isinstance(resolution, int) and resolution >= 32
    if not ok or resolution & (resolution - 1):
      raise ValueError(
        f"resolution must be a power of two >= 32, got {resolution!r}"
      )
    if not isinstance(num_frames, int) or num_frames < 2:
      raise ValueError(f"num_frames must be an int >= 2, got {num_frames!r}")
    self.resolution = resolution
    self.num_frames = num_frames
    self.dtype = dtype
    kw = dict(dtype=dtype, rngs=rngs)
    self.conv1 = SNConv3d(
      3,
      base_channels,
      (3, 7, 7),
      strides=(1, 2, 2),
      padding=((1, 1), (3, 3), (3, 3)),
      **kw,
    )
    self.gn1 = _group_norm(base_channels, **kw)
    ch = base_channels // 2
    self.layer1 = _make_layer(base_channels, ch, stride=1, stride_t=1, **kw)
    stages = []
    for out_ch, stride in temporal_stages(
      resolution,
      num_frames,
      base_channels=base_channels,
      max_channels=max_channels,
    ):
      stages.append(_make_layer(ch, out_ch, stride=stride, stride_t=2, **kw))
      ch = out_ch
    self.layers = nnx.List(stages)
    self.final = nnx.Conv(
      ch,
      1,
      (3, 3),
      padding=PAD_1,
      kernel_init=torch_kernel_init,
      bias_init=torch_bias_init(ch * 9),
      dtype=dtype,
      rngs=rngs,
    )

  def __call__(
    self, video_bthwc: jax.Array, *, update_stats: bool
  ) -> tuple[jax.Array, list[jax.Array]]:
    """Scores a clip.

    Args:
      video_bthwc: (B, T, S, S, 3) frames 1..T in [-1, 1].
      update_stats: one power iteration per SN conv, written back to the
        SpectralState (torch train mode); False uses the stored u, v.

    Returns:
      logits (B, h, w, 1) (4x4 at S=64, 8x8 at 128) and the feature-matching
      features [layer1 output, stage outputs...], each (B, T', h', w', C),
      all float32.
    """
    t, s = self.num_frames, self.resolution
    want = (t, s, s, 3)
    if video_bthwc.ndim != 5 or tuple(video_bthwc.shape[1:]) != want:
      raise ValueError(
        f"TemporalDiscriminator expects (B, {t}, {s}, {s}, 3) clips, got "
        f"shape {tuple(video_bthwc.shape)}"
      )
    kw = dict(update_stats=update_stats)
    x = self.conv1(video_bthwc, **kw)
    x = max_pool3d(jax.nn.relu(self.gn1(x)))
    for block in self.layer1:
      x = block(x, **kw)
    feats = [x]
    for stage in self.layers:
      for block in stage:
        x = block(x, **kw)
      feats.append(x)
    # The stages bring T down to exactly 1 (ceil-halving until 1).
    logits = self.final(x[:, 0])
    return logits.astype(jnp.float32), [f.astype(jnp.float32) for f in feats]
