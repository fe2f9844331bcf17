"""The train state around the networks: {step, params, opt, nonfinite, disc*}.

The train state is a plain pytree: params are the generator's pure-dict
state (`nnx.split` once, merged inside the step), so the checkpoint is
exactly the state that is jitted.
"""

import jax
import jax.numpy as jnp

from ii2v_jax.models import build
from ii2v_jax.training import optim


def init_state(params: dict, optimizers: dict, disc_state=None) -> dict:
  """Fresh train state around initial generator (and D) params."""
  disc_state = disc_state or {}
  owned = optim.opt_params(params, disc_state.get("disc"))
  opt = {k: tx.init(owned[k]) for k, tx in optimizers.items()}
  return {
    "step": jnp.zeros((), jnp.int32),
    "params": params,
    "opt": opt,
    "nonfinite": {k: jnp.zeros((), jnp.int32) for k in optimizers},
    **disc_state,
  }


def abstract_state(config, optimizers: dict):
  """(graphdef, disc graphdefs or None, train state as ShapeDtypeStructs)."""
  graphdef, params = build.abstract_generator(config)
  disc_graphdefs, disc_state = build.abstract_discriminators(config)
  abstract = jax.eval_shape(
    lambda p, d: init_state(p, optimizers, d), params, disc_state
  )
  return graphdef, disc_graphdefs, abstract
