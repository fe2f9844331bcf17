"""The reference learning-rate schedule and its decoder quirk."""

import numpy as np

from configs import default
from ii2v_jax.training import optim


def test_multistep_schedule_drops_at_epoch_milestones():
  sched = optim.multistep_schedule(
    1e-4, lr_reduce=0.3, milestone_epochs=(10, 25, 50), steps_per_epoch=7
  )
  got = [float(sched(s)) for s in (0, 69, 70, 174, 175, 349, 350, 10_000)]
  want = [1e-4, 1e-4, 3e-5, 3e-5, 9e-6, 9e-6, 2.7e-6, 2.7e-6]
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_decoder_ae_lr_never_decays_by_default():
  c = default.get_config().optim
  _, scheds = optim.make_optimizers(c, steps_per_epoch=1)
  assert float(scheds["ae_dec"](1000)) == 1e-4
  assert float(scheds["ae_enc"](1000)) < 1e-5
  assert float(scheds["dyn"](1000)) < 1e-5
  c.decoder_ae_lr_decays = True
  _, scheds = optim.make_optimizers(c, steps_per_epoch=1)
  assert float(scheds["ae_dec"](1000)) < 1e-5


def test_discriminator_milestones_count_epochs_from_the_gan_start():
  c = default.get_config()
  c.gan.start_iteration = 25  # 0-based step 24; the epoch ends at step 30.
  opts, scheds = optim.make_optimizers(c.optim, 10, c.gan)
  assert set(opts) == {"ae_enc", "ae_dec", "dyn", "disc_patch", "disc_temporal"}
  d = scheds["disc_temporal"]
  # The D scheduler's 10th epoch end after the start is step 30 + 9 * 10 =
  # 120, i.e. D update 120 - 24 = 96; then 15 and 25 epochs later.
  got = [float(d(n)) for n in (0, 95, 96, 245, 246, 495, 496)]
  want = [1e-4, 1e-4, 3e-5, 3e-5, 9e-6, 9e-6, 2.7e-6]
  np.testing.assert_allclose(got, want, rtol=1e-6)
  c.gan.enabled = False
  assert "disc_patch" not in optim.make_optimizers(c.optim, 10, c.gan)[0]
