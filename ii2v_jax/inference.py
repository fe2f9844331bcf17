"""Jitted rollouts shared by training previews, evaluation and sampling."""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from ii2v_jax import checkpoint, state


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


@functools.lru_cache(maxsize=4)
def load_model(workdir: str):
  """(config, graphdef, params, step) of the newest checkpoint in workdir."""
  config = checkpoint.read_config(workdir)
  graphdef, abstract = state.abstract_generator(config)
  params, step = checkpoint.restore_params(workdir, abstract)
  return config, graphdef, params, step
