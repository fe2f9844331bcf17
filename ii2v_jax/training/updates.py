"""Optimizer updates that a non-finite loss or gradient cannot corrupt."""

import jax
import jax.numpy as jnp
import optax


def all_finite(*trees) -> jax.Array:
  leaves = [x for t in trees for x in jax.tree.leaves(t)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def apply_if_finite(tx, grads, opt_state, params, loss):
  """One update, skipped (state kept) if the loss or a gradient is not finite.

  Returns (params, opt_state, skipped as int32 0/1).
  """
  ok = all_finite(loss, grads)
  updates, new_opt = tx.update(grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  keep = lambda new, old: jnp.where(ok, new, old)
  return (
    jax.tree.map(keep, new_params, params),
    jax.tree.map(keep, new_opt, opt_state),
    (~ok).astype(jnp.int32),
  )
