"""Jitted rollouts and pixel ranges shared by training, evaluation, sampling."""

import jax
import jax.numpy as jnp
from flax import nnx


def make_rollout_fn(graphdef, num_frames: int, *, unroll: bool = False):
  """params, x0 (B,S,S,3) in [-1,1], poke (B,S,S,2) -> video (B,T,S,S,3)."""

  @jax.jit
  def rollout(params, x0_bhwc, poke_bhw2):
    model = nnx.merge(graphdef, params)
    video, _ = model.rollout(x0_bhwc, poke_bhw2, num_frames, unroll=unroll)
    return video

  return rollout


def to_uint8(x: jax.Array) -> jax.Array:
  """[-1,1] -> uint8 by truncation, as the reference stores clips."""
  return ((jnp.clip(x, -1.0, 1.0) + 1.0) * 127.5).astype(jnp.uint8)


def to_unit_range(video_uint8: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return video_uint8.astype(jnp.float32) / 127.5 - 1.0


def make_uint8_rollout_fn(graphdef, num_frames: int):
  """params, x0 (B,S,S,3) uint8, poke (B,S,S,2) -> video (B,T,S,S,3) uint8.

  The pixel conversions run inside the jitted call, so sampling and
  serving share one program and get the same frames for the same input.
  """

  @jax.jit
  def rollout(params, x0_bhwc, poke_bhw2):
    model = nnx.merge(graphdef, params)
    x0 = to_unit_range(x0_bhwc)
    video, _ = model.rollout(x0, poke_bhw2, num_frames)
    return to_uint8(video)

  return rollout
