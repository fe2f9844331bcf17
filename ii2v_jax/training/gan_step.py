"""The adversarial part of one training iteration (REFERENCE.md §7.1 5-6).

Given the rollout x_hat (with its vjp kept by the caller), each
discriminator takes one step on stop_gradient(x_hat), then the generator
terms are computed with the *updated* discriminator; only the gradient of
those terms with respect to x_hat is returned, so the rollout runs once.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from ii2v_jax.models import spectral_norm
from ii2v_jax.training import gan, updates

DISC_OPTIMIZERS = ("disc_patch", "disc_temporal")


@dataclasses.dataclass(frozen=True)
class GanSettings:
  """Static GAN settings and the discriminators' graph definitions."""

  patch_graphdef: Any
  temporal_graphdef: Any
  start_iteration: int
  patch_weight: float
  patch_fm_weight: float
  patch_r1_gamma: float
  patch_num_frames: int
  temporal_weight: float
  temporal_fm_weight: float
  temporal_r1_gamma: float
  seed: int


def settings_from_config(config, patch_graphdef, temporal_graphdef):
  g = config.gan
  return GanSettings(
    patch_graphdef=patch_graphdef,
    temporal_graphdef=temporal_graphdef,
    start_iteration=int(g.start_iteration),
    patch_weight=g.patch_weight,
    patch_fm_weight=g.patch_fm_weight,
    patch_r1_gamma=g.patch_r1_gamma,
    patch_num_frames=int(g.patch_num_frames),
    temporal_weight=g.temporal_weight,
    temporal_fm_weight=g.temporal_fm_weight,
    temporal_r1_gamma=g.temporal_r1_gamma,
    seed=int(config.seed),
  )


def patch_apply(graphdef):
  def apply(params, stats, x, update_stats):
    del update_stats
    logits, feats = nnx.merge(graphdef, params)(x)
    return logits, feats, stats

  return apply


def temporal_apply(graphdef):
  def apply(params, stats, x, update_stats):
    model = nnx.merge(graphdef, params, stats)
    logits, feats = model(x, update_stats=update_stats)
    if update_stats:
      stats = nnx.to_pure_dict(nnx.state(model, spectral_norm.SpectralState))
    return logits, feats, stats

  return apply


def _d_step(apply, tx, params, stats, opt_state, real, fake, r1_gamma):
  """One discriminator update; skipped if anything is not finite."""
  (loss, (new_stats, m)), grads = jax.value_and_grad(gan.d_loss, 1, True)(
    apply, params, stats, real, fake, r1_gamma=r1_gamma
  )
  params, opt_state, skipped = updates.apply_if_finite(
    tx, grads, opt_state, params, loss
  )
  ok = skipped == 0
  stats = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new_stats, stats)
  m = {"loss_d": loss, **m, "grad_norm": optax.global_norm(grads)}
  return params, stats, opt_state, skipped, m


def adversarial(gs: GanSettings, d_state, d_opt, optimizers, step, xs, x_hat):
  """D steps, then the generator's adversarial loss and its x_hat gradient.

  Args:
    gs: settings. d_state: {"disc": {patch, temporal}, "disc_stats":
      {"temporal": spectral state}}. d_opt: the two D Adam states.
    optimizers: all optimizers by name. step: 0-based iteration.
    xs: (B, T, S, S, 3) real frames 1..T. x_hat: the prediction, same shape.

  Returns:
    (d_state, d_opt, generator loss, d loss / d x_hat, metrics, skipped).
  """
  disc, stats = dict(d_state["disc"]), dict(d_state["disc_stats"])
  d_opt = dict(d_opt)
  fake = jax.lax.stop_gradient(x_hat)
  b, t = xs.shape[:2]
  flat = lambda v: v.reshape((b * t,) + v.shape[2:])
  key = jax.random.fold_in(jax.random.key(gs.seed), step)
  k_real, k_fake = jax.random.split(key)
  n = gs.patch_num_frames
  idx_real = jax.random.randint(k_real, (n,), 0, b * t)
  idx_fake = jax.random.randint(k_fake, (n,), 0, b * t)
  real_p = flat(xs)[idx_real]
  p_apply = patch_apply(gs.patch_graphdef)
  t_apply = temporal_apply(gs.temporal_graphdef)
  metrics, skipped = {}, {}

  disc["patch"], _, d_opt["disc_patch"], skipped["disc_patch"], m = _d_step(
    p_apply,
    optimizers["disc_patch"],
    disc["patch"],
    {},
    d_opt["disc_patch"],
    real_p,
    flat(fake)[idx_fake],
    gs.patch_r1_gamma,
  )
  metrics.update({f"gan_patch/{k}": v for k, v in m.items()})
  (
    disc["temporal"],
    stats["temporal"],
    d_opt["disc_temporal"],
    skipped["disc_temporal"],
    m,
  ) = _d_step(
    t_apply,
    optimizers["disc_temporal"],
    disc["temporal"],
    stats["temporal"],
    d_opt["disc_temporal"],
    xs,
    fake,
    gs.temporal_r1_gamma,
  )
  metrics.update({f"gan_temporal/{k}": v for k, v in m.items()})

  def generator_terms(video):
    lp, mp = gan.g_loss(
      p_apply,
      disc["patch"],
      {},
      real_p,
      flat(video)[idx_fake],
      fm_weight=gs.patch_fm_weight,
    )
    lt, mt = gan.g_loss(
      t_apply,
      disc["temporal"],
      stats["temporal"],
      xs,
      video,
      fm_weight=gs.temporal_fm_weight,
    )
    loss = gs.patch_weight * lp + gs.temporal_weight * lt
    m = {f"gan_patch/{k}": v for k, v in mp.items()}
    m.update({f"gan_temporal/{k}": v for k, v in mt.items()})
    return loss, m

  (l_adv, m), g_video = jax.value_and_grad(generator_terms, has_aux=True)(x_hat)
  metrics.update(m)
  d_state = {"disc": disc, "disc_stats": stats}
  return d_state, d_opt, l_adv, g_video, metrics, skipped
