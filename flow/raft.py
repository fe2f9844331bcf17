"""RAFT optical flow (Teed & Deng, ECCV 2020) in Flax NNX, NHWC.

Matches torchvision's `raft_large` / `raft_small` (which match the original
princeton-vl/RAFT models) layer for layer, so their checkpoints convert
exactly (`flow.raft_weights`). Inference only.

  model = raft.load_raft("raft_large.npz")
  flow_fn = raft.make_flow_fn(model, iters=12)   # jitted
  flow_nhw2 = flow_fn(frames_a_nhw3, frames_b_nhw3)

Frames are RGB, uint8 or float on the 0..255 scale (`value_range` changes
that), H and W divisible by 8 (the model raises otherwise; the `raft`
method of `flow.estimate_flow` pads and crops instead). Flow is in
pixels: channel 0 = +x (right), channel 1 = +y (down).
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from flow import raft_blocks as rb
from flow import raft_corr, raft_weights


@dataclasses.dataclass(frozen=True)
class RaftSpec:
  """Architecture of one RAFT variant (torchvision's `_raft` arguments)."""

  feature_widths: tuple[int, ...]
  context_widths: tuple[int, ...]
  block: str
  context_norm: str | None
  corr_levels: int
  corr_radius: int
  motion_corr_widths: tuple[int, ...]
  motion_flow_widths: tuple[int, int]
  motion_out: int
  hidden: int
  gru_kernels: tuple[tuple[int, int], ...]
  flow_head_hidden: int
  convex_upsampling: bool


VARIANTS = {
  "large": RaftSpec(
    feature_widths=(64, 64, 96, 128, 256),
    context_widths=(64, 64, 96, 128, 256),
    block="residual",
    context_norm="batch",
    corr_levels=4,
    corr_radius=4,
    motion_corr_widths=(256, 192),
    motion_flow_widths=(128, 64),
    motion_out=128,
    hidden=128,
    gru_kernels=((1, 5), (5, 1)),
    flow_head_hidden=256,
    convex_upsampling=True,
  ),
  "small": RaftSpec(
    feature_widths=(32, 32, 64, 96, 128),
    context_widths=(32, 32, 64, 96, 160),
    block="bottleneck",
    context_norm=None,
    corr_levels=4,
    corr_radius=3,
    motion_corr_widths=(96,),
    motion_flow_widths=(64, 32),
    motion_out=82,
    hidden=96,
    gru_kernels=((3, 3),),
    flow_head_hidden=128,
    convex_upsampling=False,
  ),
}


def get_spec(variant: str) -> RaftSpec:
  if variant not in VARIANTS:
    raise ValueError(
      f"unknown RAFT variant {variant!r}; choose one of {sorted(VARIANTS)}"
    )
  return VARIANTS[variant]


def normalize_frames(
  frames_nhw3: jax.Array, value_range: tuple[float, float] = (0.0, 255.0)
) -> jax.Array:
  """Maps frames from `value_range` to [-1, 1] float32 (RAFT's input)."""
  lo, hi = value_range
  x = jnp.asarray(frames_nhw3).astype(jnp.float32)
  return 2.0 * ((x - lo) / (hi - lo)) - 1.0


def check_frames(shape_a, shape_b, min_side: int) -> None:
  """Raises ValueError unless both are (N, H, W, 3), equal, H, W % 8 == 0."""
  for name, shape in (("frames_a", shape_a), ("frames_b", shape_b)):
    if len(shape) != 4 or shape[-1] != 3:
      raise ValueError(f"{name} must be (N, H, W, 3) RGB, got {shape}")
  if tuple(shape_a) != tuple(shape_b):
    raise ValueError(f"frame shapes differ: {shape_a} vs {shape_b}")
  h, w = shape_a[1:3]
  if h % 8 or w % 8:
    raise ValueError(
      f"RAFT needs H and W divisible by 8, got {h}x{w}; pad the frames "
      "(flow.estimate_flow(method='raft') pads and crops for you)"
    )
  if min(h, w) < min_side:
    raise ValueError(
      f"RAFT needs H and W >= {min_side} for its correlation pyramid, "
      f"got {h}x{w}"
    )


class RAFT(nnx.Module):
  """RAFT: feature and context encoders, correlation pyramid, GRU updates.

  Attributes mirror torchvision's `RAFT`; `spec` holds the architecture.
  """

  def __init__(self, variant: str = "large", *, precision=None, rngs):
    s = self.spec = get_spec(variant)
    self.variant = variant
    self.precision = precision
    kw = dict(block=s.block, precision=precision, rngs=rngs)
    self.feature_encoder = rb.Encoder(s.feature_widths, norm="instance", **kw)
    self.context_encoder = rb.Encoder(
      s.context_widths, norm=s.context_norm, **kw
    )
    kw = dict(precision=precision, rngs=rngs)
    corr_ch = s.corr_levels * (2 * s.corr_radius + 1) ** 2
    context_ch = s.context_widths[-1] - s.hidden
    self.update_block = rb.UpdateBlock(
      rb.MotionEncoder(
        corr_ch,
        s.motion_corr_widths,
        s.motion_flow_widths,
        s.motion_out,
        **kw,
      ),
      rb.RecurrentBlock(
        s.motion_out + context_ch, s.hidden, s.gru_kernels, **kw
      ),
      rb.FlowHead(s.hidden, s.flow_head_hidden, **kw),
    )
    self.mask_predictor = (
      rb.MaskPredictor(s.hidden, 256, **kw) if s.convex_upsampling else None
    )

  @property
  def min_side(self) -> int:
    """Smallest H, W whose coarsest pyramid level keeps one pixel."""
    return 8 * 2 ** (self.spec.corr_levels - 1)

  def upsample(self, flow_nhw2: jax.Array, h_nhwc: jax.Array) -> jax.Array:
    """1/8-res flow -> full-res flow (convex for large, bilinear small)."""
    if self.mask_predictor is None:
      return raft_corr.upsample_bilinear(flow_nhw2)
    return raft_corr.upsample_convex(flow_nhw2, self.mask_predictor(h_nhwc))

  def encode(self, image1_nhw3: jax.Array, image2_nhw3: jax.Array):
    """Correlation pyramid, initial hidden state and context."""
    n = image1_nhw3.shape[0]
    fmaps = self.feature_encoder(jnp.concatenate([image1_nhw3, image2_nhw3]))
    pyramid = raft_corr.build_pyramid(
      fmaps[:n], fmaps[n:], self.spec.corr_levels, self.precision
    )
    ctx = self.context_encoder(image1_nhw3)
    hidden = jnp.tanh(ctx[..., : self.spec.hidden])
    context = jax.nn.relu(ctx[..., self.spec.hidden :])
    return pyramid, hidden, context

  def __call__(
    self,
    frames_a_nhw3: jax.Array,
    frames_b_nhw3: jax.Array,
    *,
    iters: int = 12,
    all_iters: bool = False,
    value_range: tuple[float, float] = (0.0, 255.0),
    unroll: int | bool = 1,
  ) -> jax.Array:
    """Flow from frames a to frames b.

    Args:
      frames_a_nhw3: (N, H, W, 3) RGB, uint8 or float in `value_range`.
      frames_b_nhw3: the same shape.
      iters: number of GRU refinement iterations (>= 1).
      all_iters: return the flow of every iteration, not just the last.
      value_range: (black, white) values of float input.
      unroll: `jax.lax.scan` unrolling of the refinement loop.

    Returns:
      (N, H, W, 2) float32 flow in pixels (u right, v down), or
      (iters, N, H, W, 2) with `all_iters`.
    """
    check_frames(frames_a_nhw3.shape, frames_b_nhw3.shape, self.min_side)
    if iters < 1:
      raise ValueError(f"iters must be >= 1, got {iters}")
    image1 = normalize_frames(frames_a_nhw3, value_range)
    image2 = normalize_frames(frames_b_nhw3, value_range)
    pyramid, hidden, context = self.encode(image1, image2)
    n, h, w = hidden.shape[:3]
    coords0 = raft_corr.coords_grid(n, h, w)
    radius = self.spec.corr_radius

    def step(carry, _):
      h_nhwc, coords1 = carry
      coords1 = jax.lax.stop_gradient(coords1)  # as in the paper
      corr = raft_corr.lookup(pyramid, coords1, radius, self.precision)
      h_nhwc, delta = self.update_block(
        h_nhwc, context, corr, coords1 - coords0
      )
      coords1 = coords1 + delta
      up = self.upsample(coords1 - coords0, h_nhwc) if all_iters else None
      return (h_nhwc, coords1), up

    (hidden, coords1), ups = jax.lax.scan(
      step, (hidden, coords0), None, length=iters, unroll=unroll
    )
    return ups if all_iters else self.upsample(coords1 - coords0, hidden)


def make_flow_fn(
  model: RAFT, **options
) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """A jitted `(frames_a_nhw3, frames_b_nhw3) -> flow` for `model`.

  `options` are `RAFT.__call__`'s keywords (iters, all_iters, value_range,
  unroll). The model is split once; its state is an argument of the
  jitted pure function (not a baked-in constant): one compilation per
  input shape and dtype.
  """
  graphdef, state = nnx.split(model)
  opts = tuple(sorted(options.items()))
  return functools.partial(_apply, graphdef, state, opts=opts)


@functools.partial(jax.jit, static_argnums=0, static_argnames="opts")
def _apply(graphdef, state, frames_a, frames_b, *, opts):
  model = nnx.merge(graphdef, state)
  return model(frames_a, frames_b, **dict(opts))


def abstract_model(variant: str, precision=None) -> RAFT:
  """The model with shape-only parameters (no memory, no compute)."""
  return nnx.eval_shape(
    lambda: RAFT(variant, precision=precision, rngs=nnx.Rngs(0))
  )


def param_shapes(variant: str) -> dict[str, tuple[int, ...]]:
  """'/'-joined state paths -> shapes, the layout of converted weights."""
  flat = nnx.to_flat_state(nnx.state(abstract_model(variant)))
  return {"/".join(map(str, path)): tuple(v.shape) for path, v in flat}


def model_from_params(
  variant: str, params: dict, *, source: str = "params", precision=None
) -> RAFT:
  """RAFT holding `params` ('/'-path -> array, as `flow.raft_weights`).

  Raises:
    ValueError: missing, unexpected or wrongly shaped parameters (named).
  """
  raft_weights.check_params(params, param_shapes(variant), source)
  graphdef, state = nnx.split(abstract_model(variant, precision))
  flat = nnx.to_flat_state(state)
  state = nnx.from_flat_state(
    [
      (p, v.replace(jnp.asarray(params["/".join(map(str, p))], jnp.float32)))
      for p, v in flat
    ]
  )
  return nnx.merge(graphdef, state)


def load_raft(path, variant: str | None = None, precision=None) -> RAFT:
  """RAFT with weights from a `flow.raft_convert` .npz.

  Args:
    path: .npz written by `python -m flow.raft_convert`.
    variant: expected variant ("large" / "small"); None takes the file's.
    precision: matmul / conv precision (None: backend default).

  Raises:
    ValueError: unreadable file, other variant, or missing, unexpected or
      wrongly shaped parameters (named in the message).
  """
  file_variant, params = raft_weights.read_npz(path)
  if variant is not None and variant != file_variant:
    raise ValueError(f"{path} holds RAFT-{file_variant}, not {variant}")
  return model_from_params(
    file_variant, params, source=str(path), precision=precision
  )


def save_raft(model: RAFT, path) -> None:
  """Writes `model`'s weights as a `flow.raft_convert` .npz (`load_raft`
  reads it back), e.g. random-init weights for plumbing checks."""
  flat = nnx.to_flat_state(nnx.state(model))
  params = {"/".join(map(str, p)): np.asarray(v.get_value()) for p, v in flat}
  raft_weights.write_npz(path, model.variant, params)


def init_raft(variant: str = "large", seed: int = 0, precision=None) -> RAFT:
  """RAFT with random weights (benchmarks and tests)."""
  return RAFT(variant, precision=precision, rngs=nnx.Rngs(seed))


def count_params(model: RAFT) -> int:
  """Number of trainable parameters (torchvision: large 5257536)."""
  params = nnx.state(model, nnx.Param)
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
