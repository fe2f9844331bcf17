"""Building the generator from a config and the train state around it.

The train state is a plain pytree {step, params, opt}: params are the
generator's pure-dict state (`nnx.split` once, merged inside the step), so
the checkpoint is exactly the state that is jitted.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from ii2v_jax import generator, optim

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def build_generator(config, *, seed: int | None = None) -> generator.Generator:
  """The generator that `config.model` and `config.data` describe."""
  m = config.model
  if m.dtype not in DTYPES:
    raise ValueError(
      f"model.dtype must be one of {sorted(DTYPES)}: {m.dtype!r}"
    )
  return generator.Generator(
    resolution=config.data.resolution,
    channels=m.channels,
    poke_channels=m.poke_channels,
    min_channels=m.min_channels,
    precompute_poke_input=m.precompute_poke_input,
    dtype=DTYPES[m.dtype],
    rngs=nnx.Rngs(config.seed if seed is None else seed),
  )


def split_generator(model: generator.Generator):
  """(graphdef, params as a nested dict of arrays)."""
  graphdef, state = nnx.split(model)
  return graphdef, nnx.to_pure_dict(state)


def abstract_generator(config):
  """(graphdef, params as ShapeDtypeStructs) without allocating weights."""
  model = nnx.eval_shape(lambda: build_generator(config))
  return split_generator(model)


def init_state(params: dict, optimizers: dict) -> dict:
  """Fresh train state around initial generator params."""
  owned = optim.opt_params(params)
  opt = {k: tx.init(owned[k]) for k, tx in optimizers.items()}
  return {"step": jnp.zeros((), jnp.int32), "params": params, "opt": opt}


def abstract_state(config, optimizers: dict):
  """(graphdef, train state as ShapeDtypeStructs)."""
  graphdef, params = abstract_generator(config)
  return graphdef, jax.eval_shape(lambda p: init_state(p, optimizers), params)


def count_params(params: dict) -> int:
  return int(sum(x.size for x in jax.tree.leaves(params)))
