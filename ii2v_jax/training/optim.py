"""The reference optimizers (REFERENCE.md §7.4) as optax transformations.

Three Adam states, as in the original's parameter groups: the autoencoder
step updates {E_sigma} and {G}; the dynamics step updates {E_phi, F, G}.
G therefore has two Adam states and two updates per iteration. With GANs,
each discriminator has its own Adam as well.
"""

import optax

AE_GROUPS = ("shape_enc", "dec")
DYN_GROUPS = ("dynamics_enc", "fusion_block", "dec")


def multistep_schedule(
  lr: float, *, lr_reduce: float, milestone_epochs, steps_per_epoch: int
) -> optax.Schedule:
  """MultiStepLR stepped once per epoch: lr * reduce^(milestones passed)."""
  boundaries = {
    int(e) * steps_per_epoch: lr_reduce for e in milestone_epochs if e > 0
  }
  return optax.piecewise_constant_schedule(lr, boundaries)


def adam(schedule: optax.Schedule, *, b1: float, b2: float, eps: float):
  """Torch-default Adam (no weight decay) with a step-indexed schedule."""
  return optax.adam(schedule, b1=b1, b2=b2, eps=eps)


def make_schedules(optim_cfg, steps_per_epoch: int) -> dict:
  """Learning-rate schedules keyed by optimizer name."""
  decaying = multistep_schedule(
    optim_cfg.lr,
    lr_reduce=optim_cfg.lr_reduce,
    milestone_epochs=optim_cfg.lr_milestone_epochs,
    steps_per_epoch=steps_per_epoch,
  )
  # Reference quirk: the decoder's AE lr is reset to a flat ramp every
  # iteration, so it never decays unless the fix is switched on.
  dec = decaying if optim_cfg.decoder_ae_lr_decays else optim_cfg.lr
  return {
    "ae_enc": decaying,
    "ae_dec": optax.constant_schedule(dec) if isinstance(dec, float) else dec,
    "dyn": decaying,
  }


def disc_schedule(optim_cfg, steps_per_epoch: int, start_iteration: int):
  """Schedule over discriminator updates (its count starts at the GAN start).

  The reference's D schedulers step only at epoch ends after the GAN start,
  so their milestones count epochs from the first such epoch end.
  """
  first_update = start_iteration - 1  # 0-based step of the first D update.
  first_end = (first_update // steps_per_epoch + 1) * steps_per_epoch
  boundaries = {
    first_end
    + (int(e) - 1) * steps_per_epoch
    - first_update: optim_cfg.lr_reduce
    for e in optim_cfg.lr_milestone_epochs
    if e > 0
  }
  return optax.piecewise_constant_schedule(optim_cfg.lr, boundaries)


def make_optimizers(optim_cfg, steps_per_epoch: int, gan_cfg=None) -> dict:
  """Returns ({name: GradientTransformation}, {name: schedule}).

  With an enabled `gan_cfg`, adds "disc_patch" and "disc_temporal", whose
  schedules are indexed by discriminator updates, not by iteration.
  """
  schedules = make_schedules(optim_cfg, steps_per_epoch)
  if gan_cfg is not None and gan_cfg.enabled:
    d = disc_schedule(optim_cfg, steps_per_epoch, gan_cfg.start_iteration)
    schedules.update(disc_patch=d, disc_temporal=d)
  kw = dict(b1=optim_cfg.b1, b2=optim_cfg.b2, eps=optim_cfg.eps)
  return {k: adam(s, **kw) for k, s in schedules.items()}, schedules


def opt_params(params: dict, disc: dict | None = None) -> dict:
  """The parameter subtree each optimizer owns."""
  owned = {
    "ae_enc": params["shape_enc"],
    "ae_dec": params["dec"],
    "dyn": {k: params[k] for k in DYN_GROUPS},
  }
  if disc is not None:
    owned.update(disc_patch=disc["patch"], disc_temporal=disc["temporal"])
  return owned
