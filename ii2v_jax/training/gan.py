"""Adversarial losses of the reference recipe (REFERENCE.md §7.1, §7.3).

A discriminator is used through a function
`apply(params, stats, x, update_stats) -> (logits, features, new_stats)`,
so the patch (no state) and temporal (spectral-norm state) ones share code.
"""

import jax
import jax.numpy as jnp


def d_loss(apply, params, stats, real, fake, *, r1_gamma: float):
  """Hinge loss + R1 on reals; returns (loss, (new_stats, metrics)).

  R1 = mean over samples of the summed squared input gradient of sum D(x_r)
  (no 1/2), as the reference computes it. `fake` must carry no gradient.
  """

  def real_logits_sum(x):
    logits, _, new_stats = apply(params, stats, x, True)
    return jnp.sum(logits), (logits, new_stats)

  if r1_gamma:
    grad_x, (logits_r, new_stats) = jax.grad(real_logits_sum, has_aux=True)(
      real
    )
    r1 = jnp.mean(jnp.sum(jnp.square(grad_x).reshape(len(real), -1), -1))
  else:
    _, (logits_r, new_stats) = real_logits_sum(real)
    r1 = jnp.zeros(())
  logits_f, _, _ = apply(params, new_stats, fake, False)
  l_real = jnp.mean(jax.nn.relu(1.0 - logits_r))
  l_fake = jnp.mean(jax.nn.relu(1.0 + logits_f))
  loss = l_real + l_fake + r1_gamma * r1
  metrics = {
    "loss_real": l_real,
    "loss_fake": l_fake,
    "r1": r1,
    "logits_real": jnp.mean(logits_r),
    "logits_fake": jnp.mean(logits_f),
  }
  return loss, (new_stats, metrics)


def feature_matching(fake_feats, real_feats) -> jax.Array:
  """Mean over feature maps of mean |f(fake) - f(real)|; reals fixed."""
  terms = [
    jnp.mean(jnp.abs(f - jax.lax.stop_gradient(r)))
    for f, r in zip(fake_feats, real_feats, strict=True)
  ]
  return jnp.mean(jnp.stack(terms))


def g_loss(apply, params, stats, real, fake, *, fm_weight: float):
  """-mean D(fake) + fm_weight * FM with the (already updated) D.

  Returns (loss, metrics); gradients flow into `fake` only.
  """
  logits_f, feats_f, _ = apply(params, stats, fake, False)
  l_adv = -jnp.mean(logits_f)
  metrics = {"loss_adv": l_adv}
  if not fm_weight:
    return l_adv, metrics
  _, feats_r, _ = apply(params, stats, real, False)
  fm = feature_matching(feats_f, feats_r)
  metrics["loss_fm"] = fm
  return l_adv + fm_weight * fm, metrics


def sample_frames(key, frames_nhwc: jax.Array, count: int) -> jax.Array:
  """`count` frames drawn uniformly with replacement (the patch-GAN batch)."""
  idx = jax.random.randint(key, (count,), 0, frames_nhwc.shape[0])
  return frames_nhwc[idx]
