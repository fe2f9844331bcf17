"""One II2V training iteration as a pure function (REFERENCE.md §7.1).

1. AE step on {E_sigma, G}: perceptual(x_0, G(E_sigma(x_0))).
2. Rollout with the updated E_sigma and G.
3. Dynamics step on {E_phi, F, G}: 5 * L_rec + 0.1 * L_lat, where the
   latent targets E_sigma(x_n) carry no gradient (E_sigma learns only from
   the AE loss).

The adversarial terms of the full recipe join the dynamics loss here.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from ii2v_jax.models import inference
from ii2v_jax.pretrained import perceptual
from ii2v_jax.training import gan_step, optim, updates


@dataclasses.dataclass(frozen=True)
class StepSettings:
  """Static settings of the step (hashable, so jit can close over them)."""

  num_frames: int
  perceptual_layers: tuple[str, ...]
  perceptual_pixel_term: bool = True
  ae_weight: float = 1.0
  vgg_dyn_weight: float = 5.0
  latent_dynamics_weight: float = 0.1
  target_weight: float = 1.0
  flow_weight: float = 0.0


def settings_from_config(config) -> StepSettings:
  """The step's settings; refuses a flow loss the model cannot compute."""
  flow_weight = config.loss.get("flow_weight", 0.0)
  warp = config.model.get("output_head", "pixels") == "warp"
  if flow_weight and not (warp and config.data.get("flow_targets", False)):
    raise ValueError(
      "loss.flow_weight needs model.output_head='warp' and "
      "data.flow_targets=True"
    )
  return StepSettings(
    num_frames=config.data.num_frames,
    perceptual_layers=tuple(config.loss.perceptual_layers),
    perceptual_pixel_term=config.loss.perceptual_pixel_term,
    ae_weight=config.loss.ae_weight,
    vgg_dyn_weight=config.loss.vgg_dyn_weight,
    latent_dynamics_weight=config.loss.latent_dynamics_weight,
    target_weight=config.loss.target_weight,
    flow_weight=flow_weight,
  )


def _vgg(vgg_params, s: StepSettings, target, pred):
  return perceptual.perceptual_loss_per_example(
    vgg_params,
    target,
    pred,
    layers=s.perceptual_layers,
    include_pixel_term=s.perceptual_pixel_term,
  )


def ae_loss(ae_params, params, graphdef, vgg_params, s: StepSettings, x0):
  """Perceptual autoencoding loss of x_0 (B,S,S,3) through E_sigma and G."""
  model = nnx.merge(graphdef, {**params, **ae_params})
  x_hat, _ = model.autoencode(x0)
  return s.ae_weight * jnp.mean(_vgg(vgg_params, s, x0, x_hat))


def latent_targets(params, graphdef, frames_bthwc):
  """E_sigma(x_n) for every target frame, GRU order, each (B,T,h,w,c)."""
  b, t = frames_bthwc.shape[:2]
  model = nnx.merge(graphdef, params)
  flat = model.encode_shape(
    frames_bthwc.reshape((b * t,) + frames_bthwc.shape[2:])
  )
  return [jax.lax.stop_gradient(f.reshape((b, t) + f.shape[1:])) for f in flat]


def rec_latent_loss(
  video_hat,
  states,
  flow_hat,
  s: StepSettings,
  vgg_params,
  xs,
  targets,
  flow_targets=None,
):
  """5 * L_rec + 0.1 * L_lat of a rollout; returns (loss, aux metrics).

  With the warp head and `s.flow_weight`, adds flow_weight * the mean L1
  between its flows and `flow_targets` (B, T, S, S, 2).
  """
  b, t = xs.shape[:2]
  flat = lambda v: v.reshape((b * t,) + v.shape[2:])
  rec_bt = _vgg(vgg_params, s, flat(xs), flat(video_hat)).reshape(b, t)
  w = jnp.ones((t,)).at[-1].set(s.target_weight)
  l_rec = jnp.mean(rec_bt * w)
  l_lat = jnp.mean(
    jnp.stack([jnp.mean((h - g) ** 2) for h, g in zip(states, targets)])
  )
  loss = s.vgg_dyn_weight * l_rec + s.latent_dynamics_weight * l_lat
  aux = {"loss_rec": l_rec, "loss_latent": l_lat}
  if s.flow_weight:  # settings_from_config checked flows and targets exist
    aux["loss_flow"] = jnp.mean(jnp.abs(flow_hat - flow_targets))
    loss = loss + s.flow_weight * aux["loss_flow"]
  return loss, aux


def rollout_fn(params, graphdef, s: StepSettings, x0, poke):
  """dyn params -> (video_hat, states); differentiated with jax.vjp."""

  def run(dyn_params):
    model = nnx.merge(graphdef, {**params, **dyn_params})
    # Unrolled: XLA:CPU differentiates the rolled loop ~15x slower (T is
    # 10), and XLA's FLOP count sees every step.
    return model.rollout(x0, poke, s.num_frames, unroll=True, with_flow=True)

  return run


def train_step(
  state: dict,
  batch: dict,
  vgg_params: Any,
  *,
  graphdef,
  optimizers,
  schedules,
  s,
  gan=None,
  gan_active: bool = False,
):
  """One iteration. state = {step, params, opt, nonfinite[, disc...]}.

  `gan` (a `gan_step.GanSettings`) is set when the state holds
  discriminators; `gan_active` (static) selects the adversarial phase.
  """
  video = inference.to_unit_range(batch["video"])
  x0, xs, poke = video[:, 0], video[:, 1:], batch["poke"]
  params, opt = state["params"], dict(state["opt"])
  skipped = dict(state["nonfinite"])
  step = state["step"]
  new = {}

  ae = {k: params[k] for k in optim.AE_GROUPS}
  l_ae, g_ae = jax.value_and_grad(ae_loss)(
    ae, params, graphdef, vgg_params, s, x0
  )
  new["shape_enc"], opt["ae_enc"], sk_enc = updates.apply_if_finite(
    optimizers["ae_enc"],
    g_ae["shape_enc"],
    opt["ae_enc"],
    ae["shape_enc"],
    l_ae,
  )
  new["dec"], opt["ae_dec"], sk_dec = updates.apply_if_finite(
    optimizers["ae_dec"], g_ae["dec"], opt["ae_dec"], ae["dec"], l_ae
  )
  skipped["ae_enc"] += sk_enc
  skipped["ae_dec"] += sk_dec
  params = {**params, **new}

  targets = latent_targets(params, graphdef, xs)
  dyn = {k: params[k] for k in optim.DYN_GROUPS}
  roll = rollout_fn(params, graphdef, s, x0, poke)
  flow_t = batch.get("flow_targets")
  rec = lambda v, st, fl: rec_latent_loss(
    v, st, fl, s, vgg_params, xs, targets, flow_t
  )
  metrics = {}
  out = {"step": step + 1}
  if gan is not None:
    out.update({k: state[k] for k in ("disc", "disc_stats")})
  if gan_active:
    # One rollout: keep its vjp, step the discriminators on it, then pull
    # back the sum of all gradients with respect to the frames.
    (video_hat, states, flow_hat), pull_back = jax.vjp(roll, dyn)
    (l_dyn, aux), (g_video, g_states, g_flow) = jax.value_and_grad(
      rec, argnums=(0, 1, 2), has_aux=True
    )(video_hat, states, flow_hat)
    d_opt = {k: opt[k] for k in gan_step.DISC_OPTIMIZERS}
    d_state = {k: out[k] for k in ("disc", "disc_stats")}
    d_state, d_opt, l_adv, g_adv, d_metrics, d_skipped = gan_step.adversarial(
      gan, d_state, d_opt, optimizers, step, xs, video_hat
    )
    l_dyn, g_video = l_dyn + l_adv, g_video + g_adv
    (g_dyn,) = pull_back((g_video, g_states, g_flow))
    opt.update(d_opt)
    out.update(d_state)
    metrics.update(d_metrics)
    for k, v in d_skipped.items():
      skipped[k] += v
  else:  # A plain gradient: XLA:CPU runs it ~10 % faster than the vjp.
    (l_dyn, aux), g_dyn = jax.value_and_grad(
      lambda d: rec(*roll(d)), has_aux=True
    )(dyn)
  dyn, opt["dyn"], sk_dyn = updates.apply_if_finite(
    optimizers["dyn"], g_dyn, opt["dyn"], dyn, l_dyn
  )
  skipped["dyn"] += sk_dyn
  params = {**params, **dyn}

  metrics.update(
    {
      "loss_ae": l_ae,
      "loss_dyn": l_dyn,
      **aux,
      "grad_norm/ae_enc": optax.global_norm(g_ae["shape_enc"]),
      "grad_norm/ae_dec": optax.global_norm(g_ae["dec"]),
      "grad_norm/dyn": optax.global_norm(g_dyn),
    }
  )
  metrics.update({f"nonfinite/{k}": v for k, v in skipped.items()})
  for k, sched in schedules.items():
    # D schedules are indexed by D updates, which start at the GAN start.
    d_first = gan.start_iteration - 1 if k in gan_step.DISC_OPTIMIZERS else 0
    metrics[f"lr/{k}"] = sched(jnp.maximum(step - d_first, 0))
  out.update(params=params, opt=opt, nonfinite=skipped)
  return out, metrics
