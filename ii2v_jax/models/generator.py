"""The II2V generator (REFERENCE.md §1, §4-6): E_sigma, E_phi, ConvGRU F, G.

Submodule names follow the torch state_dict prefixes (`shape_enc.blocks.0.conv`
-> `shape_enc.blocks[0].conv`), so a checkpoint converter is a rename plus a
kernel permute. Layout NHWC; all public outputs are float32.

Level orders: encoder order [e0 (highest resolution), ..., bn]; GRU order is
its reverse [bn (16x16xC), ..., e0].
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from ii2v_jax.models.convgru import ConvGRU
from ii2v_jax.models.layers import (
  Conv2dBlock,
  ResBlock,
  apply_conv,
  make_conv,
)
from ii2v_jax.models.warp import backward_warp

BOTTLENECK_SIZE = 16
OUTPUT_HEADS = ("pixels", "warp")


def num_stages(resolution: int) -> int:
  """log2(resolution / 16); resolution must be 16 * 2**k with k >= 1."""
  ok = isinstance(resolution, int) and resolution >= 32
  if not ok or resolution & (resolution - 1):
    raise ValueError(
      "resolution must be a power of two >= 32 (16 * 2**k, k >= 1), "
      f"got {resolution!r}"
    )
  return int(math.log2(resolution // BOTTLENECK_SIZE))


def shape_widths(resolution: int, channels: int, min_channels: int) -> list:
  """E_sigma stage widths: start at max(min, C / 2**n), double, cap at C."""
  n = num_stages(resolution)
  base = max(min_channels, channels // 2**n)
  return [min(channels, base * 2**i) for i in range(n)]


def poke_widths(resolution: int, channels: int, poke_channels: int) -> list:
  """E_phi stride-2 stage widths: poke_channels * 2**i, capped at C."""
  n = num_stages(resolution)
  return [min(channels, poke_channels * 2**i) for i in range(n)]


def _down_blocks(in_ch, widths, *, dtype, rngs) -> nnx.List:
  chans = [in_ch] + list(widths)
  return nnx.List(
    [
      Conv2dBlock(a, b, stride=2, dtype=dtype, rngs=rngs)
      for a, b in zip(chans[:-1], chans[1:])
    ]
  )


class ShapeEncoder(nnx.Module):
  """E_sigma: stride-2 conv blocks (the skips), then a bottleneck ResBlock."""

  def __init__(self, in_ch, widths, channels, *, dtype, rngs: nnx.Rngs):
    self.blocks = _down_blocks(in_ch, widths, dtype=dtype, rngs=rngs)
    self.bottleneck = ResBlock(widths[-1], channels, dtype=dtype, rngs=rngs)

  def __call__(self, x_bhwc: jax.Array) -> list[jax.Array]:
    """(B,S,S,3) -> encoder order [e0 (B,S/2,S/2,c0), ..., bn (B,16,16,C)]."""
    feats, x = [], x_bhwc
    for block in self.blocks:
      x = block(x)
      feats.append(x)
    feats.append(self.bottleneck(x))
    return feats


class PokeEncoder(nnx.Module):
  """E_phi: stride-2 conv blocks, ResBlock(-> C), ResBlock(C -> C)."""

  def __init__(self, in_ch, widths, channels, *, dtype, rngs: nnx.Rngs):
    self.model = _down_blocks(in_ch, widths, dtype=dtype, rngs=rngs)
    self.bottleneck = nnx.List(
      [
        ResBlock(widths[-1], channels, dtype=dtype, rngs=rngs),
        ResBlock(channels, channels, dtype=dtype, rngs=rngs),
      ]
    )

  def __call__(self, poke_bhw2: jax.Array) -> jax.Array:
    """(B, S, S, 2) pixel-unit poke -> delta (B, 16, 16, C)."""
    x = poke_bhw2
    for block in [*self.model, *self.bottleneck]:
      x = block(x)
    return x


class Decoder(nnx.Module):
  """G: in_block on the bn state, then one up-sampling ResBlock per skip.

  Block i reads [x ; state_i] and maps it to the width of the next
  shallower state (the last block keeps its state's width): with doubling
  widths this is the reference's 2 c_i -> c_i / 2.
  """

  def __init__(
    self,
    state_widths: list[int],
    *,
    colour_stats: bool = False,
    motion: bool = False,
    dtype,
    rngs: nnx.Rngs,
  ):
    skips = list(state_widths[1:])
    self.in_block = ResBlock(state_widths[0], skips[0], dtype=dtype, rngs=rngs)
    blocks, x_ch = [], skips[0]
    for i, c in enumerate(skips):
      out = skips[i + 1] if i + 1 < len(skips) else c
      blocks.append(
        ResBlock(x_ch + c, out, upsampling=True, dtype=dtype, rngs=rngs)
      )
      x_ch = out
    self.blocks = nnx.List(blocks)
    self.colour_stats = colour_stats
    self.out_conv = Conv2dBlock(
      x_ch,
      3,
      norm=False,
      activation="none" if colour_stats else "tanh",
      dtype=dtype,
      rngs=rngs,
    )
    if motion:  # residual (u, v) + poke gain; zeros: the copy at start
      zeros = nnx.initializers.zeros_init()
      self.motion_conv = make_conv(
        x_ch, 3, kernel_init=zeros, bias_init=zeros, dtype=dtype, rngs=rngs
      )

  def features(self, states: list[jax.Array]) -> jax.Array:
    """States in GRU order [(B,16,16,C), ...] -> last features (B,S,S,c)."""
    x = self.in_block(states[0])
    for block, s in zip(self.blocks, states[1:], strict=True):
      x = block(jnp.concatenate([x, s.astype(x.dtype)], axis=-1))
    return x

  def pixels(self, x: jax.Array, stats=None) -> jax.Array:
    """Features -> image (B, S, S, 3).

    With `colour_stats`, `stats` = (mean, std), each (B, 1, 1, 3), of the
    conditioning image: the output is mean + std * out_conv(x).
    """
    y = self.out_conv(x)
    if not self.colour_stats:
      return y
    mean, std = stats
    return mean.astype(y.dtype) + std.astype(y.dtype) * y

  def __call__(self, states: list[jax.Array], stats=None) -> jax.Array:
    """States in GRU order [(B,16,16,C), ...] -> image (B, S, S, 3)."""
    return self.pixels(self.features(states), stats)


def poke_vector(poke_bhw2: jax.Array) -> jax.Array:
  """(B, 2) mean displacement over a poke map's non-zero pixels (0 if none)."""
  active = jnp.any(poke_bhw2 != 0, axis=-1, keepdims=True)
  count = jnp.maximum(jnp.sum(active, axis=(1, 2)), 1)
  return jnp.sum(poke_bhw2, axis=(1, 2)) / count


def colour_stats(x_bhwc: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per-image, per-channel mean and std over H, W, each (B, 1, 1, 3)."""
  x = x_bhwc.astype(jnp.float32)
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  std = jnp.sqrt(jnp.var(x, axis=(1, 2), keepdims=True) + 1e-6)
  return mean, std


class Generator(nnx.Module):
  """II2V generator: image x0 + poke -> T frames of the object's reaction.

  Attributes:
    shape_enc: E_sigma. dynamics_enc: E_phi. fusion_block: ConvGRU F.
    dec: decoder G.
  """

  def __init__(
    self,
    *,
    resolution: int,
    channels: int = 512,
    poke_channels: int = 32,
    min_channels: int = 32,
    poke_in_channels: int = 2,
    precompute_poke_input: bool = True,
    colour_stats: bool = False,
    output_head: str = "pixels",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if output_head not in OUTPUT_HEADS:
      raise ValueError(
        f"output_head must be one of {OUTPUT_HEADS}, got {output_head!r}"
      )
    n = num_stages(resolution)
    widths = shape_widths(resolution, channels, min_channels)
    self.resolution = resolution
    self.precompute_poke_input = precompute_poke_input
    kw = dict(dtype=dtype, rngs=rngs)
    self.shape_enc = ShapeEncoder(3, widths, channels, **kw)
    self.dynamics_enc = PokeEncoder(
      poke_in_channels,
      poke_widths(resolution, channels, poke_channels),
      channels,
      **kw,
    )
    hidden = [channels] + widths[::-1]
    # Levels in GRU order live at 16, 16, 32, 64, ...: up-sample from cell 2.
    upsample = [False, False] + [True] * (n - 1)
    self.fusion_block = ConvGRU(channels, hidden, upsample, **kw)
    self.output_head = output_head
    self.dec = Decoder(
      hidden, colour_stats=colour_stats, motion=output_head == "warp", **kw
    )

  def encode_shape(self, x_bhwc: jax.Array) -> list[jax.Array]:
    """(B, S, S, 3) in [-1, 1] -> float32 states in GRU order [bn, ..., e0]."""
    feats = self.shape_enc(x_bhwc)
    return [f.astype(jnp.float32) for f in feats[::-1]]

  def encode_poke(self, poke_bhw2: jax.Array) -> jax.Array:
    """(B, S, S, 2) poke in pixel units -> delta (B, 16, 16, C) float32."""
    return self.dynamics_enc(poke_bhw2).astype(jnp.float32)

  def decode(self, states: list[jax.Array], stats=None) -> jax.Array:
    """States in GRU order -> image (B, S, S, 3) float32 in [-1, 1].

    `stats`: `colour_stats` of the conditioning image, needed (and used)
    only when the decoder restores colour statistics.
    """
    return self.dec(states, stats).astype(jnp.float32)

  def autoencode(self, x_bhwc: jax.Array) -> tuple[jax.Array, list]:
    """Static mode (len = 0): (x_hat (B,S,S,3), states in GRU order)."""
    states = self.encode_shape(x_bhwc)
    return self.decode(states, colour_stats(x_bhwc)), states

  def rollout(
    self,
    x0_bhwc: jax.Array,
    poke_bhw2: jax.Array,
    num_frames: int,
    *,
    unroll: bool = False,
    with_flow: bool = False,
  ) -> tuple:
    """Predicts frames 1..T from x0 and a poke.

    Args:
      x0_bhwc: (B, S, S, 3) start frame in [-1, 1].
      poke_bhw2: (B, S, S, 2) poke map, pixel units at resolution S.
      num_frames: T >= 1 (static).
      unroll: unrolls the scan; XLA's cost analysis counts a rolled loop
        body once, so FLOP counts need the unrolled program.
      with_flow: also return the warp head's flows.

    Returns:
      video_bthwc: (B, T, S, S, 3) float32 in [-1, 1]; states: per level in
      GRU order, stacked over time, each (B, T, h, w, c) float32; with
      `with_flow`, flows (B, T, S, S, 2) frame t -> x0 in pixels (None for
      the pixel head).
    """
    if not isinstance(num_frames, int) or num_frames < 1:
      raise ValueError(f"num_frames must be an int >= 1, got {num_frames!r}")
    states_t = self._recur(x0_bhwc, poke_bhw2, num_frames, unroll)
    states = [jnp.swapaxes(s, 0, 1) for s in states_t]
    b, t = states[0].shape[:2]
    rep = lambda v: jnp.repeat(v, t, axis=0)  # per-clip input, every frame
    # One batched decode of all B*T states instead of T decodes in the scan.
    flat = [s.reshape((b * t,) + s.shape[2:]) for s in states]
    x = self.dec.features(flat)
    flow = None
    if self.output_head == "warp":
      frames, flow = self._warp_frames(
        rep(x0_bhwc), rep(poke_vector(poke_bhw2)), x
      )
      flow = flow.reshape((b, t) + flow.shape[1:])
    else:
      mean, std = colour_stats(x0_bhwc)
      frames = self.dec.pixels(x, (rep(mean), rep(std))).astype(jnp.float32)
    video = frames.reshape((b, t) + frames.shape[1:])
    return (video, states, flow) if with_flow else (video, states)

  def _warp_frames(self, x0_nhwc, poke_n2, features):
    """x0 backward-warped by flow = -gain * poke + residual: (frames, flow).

    The gain map says how far each pixel follows the poke (1 on the poked
    part at frame T, 0 on the background): the poke's magnitude reaches
    the output although E_phi's first instance norm divides it out.
    """
    motion = apply_conv(self.dec.motion_conv, features).astype(jnp.float32)
    flow = motion[..., :2] - motion[..., 2:] * poke_n2[:, None, None, :]
    return backward_warp(x0_nhwc.astype(jnp.float32), flow), flow

  def _recur(self, x0_bhwc, poke_bhw2, num_frames: int, unroll=False):
    """Runs the ConvGRU from E_sigma(x0); states each (T, B, h, w, c)."""
    delta = self.encode_poke(poke_bhw2)
    hs = self.encode_shape(x0_bhwc)
    fusion = self.fusion_block
    kerns = fusion.kernels()  # fused once, outside the scan
    if self.precompute_poke_input:
      xc0 = fusion.input_gates0(kerns, delta)
      step = lambda h: fusion.step(kerns, h, xc0_bhw3k=xc0)
    else:
      step = lambda h: fusion.step(kerns, h, x_bhwc=delta)

    def body(h, _):
      h = step(h)
      return h, h

    _, states_t = jax.lax.scan(
      body, hs, None, length=num_frames, unroll=bool(unroll)
    )
    return states_t


def count_params(module: nnx.Module) -> int:
  """Scalars in the nnx.Param leaves; works on `nnx.eval_shape` output."""
  leaves = jax.tree.leaves(nnx.state(module, nnx.Param))
  return sum(math.prod(x.shape) for x in leaves)


def component_param_counts(gen: Generator) -> dict[str, int]:
  """Parameter counts of shape_enc, dynamics_enc, fusion_block and dec."""
  names = ("shape_enc", "dynamics_enc", "fusion_block", "dec")
  return {name: count_params(getattr(gen, name)) for name in names}
