"""A tiny config for tests: every path runs in seconds on a CPU."""

from configs import default


def get_config(arg: str | None = None):
  del arg
  c = default.get_config()
  c.model.channels = 16
  c.model.poke_channels = 4
  c.model.min_channels = 4
  c.loss.perceptual_layers = ("relu1_2",)
  # GAN phase tests lower gan.start_iteration; others skip its compile.
  c.gan.patch_ndf = 8
  c.gan.patch_num_frames = 4
  c.gan.temporal_width = 32  # GroupNorm(16) needs 16 | width / 2.
  c.train.batch_size = 8  # One clip per fake device.
  c.train.num_steps = 4
  c.train.log_every = 2
  c.train.sample_every = 2
  c.train.checkpoint_every = 2
  c.train.keep_checkpoints = 2
  c.train.progress_bar = False
  c.eval.num_clips = 8
  c.eval.batch_size = 4
  c.eval.every = 0  # Tests that need the periodic metrics turn them on.
  return c
