"""The adversarial phase: all optimizers move, exact resume, health checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ii2v_jax import checkpoint, optim, perceptual, sharding, state, train

OWNERS = ("ae_enc", "ae_dec", "dyn", "disc_patch", "disc_temporal")


def full_state(config, workdir):
  opts, _ = optim.make_optimizers(config.optim, 2, config.gan)
  _, _, abstract = state.abstract_state(config, opts)
  mngr = checkpoint.manager(workdir)
  st, _ = checkpoint.restore_latest(mngr, abstract)
  mngr.close()
  return st


def owned(st):
  return optim.opt_params(st["params"], st["disc"])


def changed(a, b) -> bool:
  return any(
    not np.array_equal(np.asarray(x), np.asarray(y))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )


@pytest.fixture
def gan_config(tiny_config):
  tiny_config.gan.start_iteration = 3  # Iterations 3 and 4 are adversarial.
  return tiny_config


def test_gan_phase_moves_every_optimizer_and_resumes_exactly(
  gan_config, tmp_path
):
  straight = train.train_and_evaluate(gan_config, str(tmp_path / "a"))
  assert {"gan_patch/loss_d", "gan_temporal/loss_fm"} <= set(straight)
  for k in ("gan_patch/loss_d", "gan_temporal/loss_d", "gan_temporal/r1"):
    assert np.isfinite(straight[k])
  assert straight["grad_norm/dyn"] > 0
  assert straight["lr/disc_temporal"] == pytest.approx(1e-4)

  gan_config.train.num_steps = 3  # Stop inside the GAN phase...
  train.train_and_evaluate(gan_config, str(tmp_path / "b"))
  mid = full_state(gan_config, tmp_path / "b")
  gan_config.train.num_steps = 2
  train.train_and_evaluate(gan_config, str(tmp_path / "c"))
  before = full_state(gan_config, tmp_path / "c")
  # One GAN iteration (2 -> 3) moves all five Adam-owned subtrees and the
  # spectral-norm vectors; D params did not move before the GAN start.
  init_disc = state.split_discriminators(
    state.build_discriminators(gan_config)
  )[1]["disc"]
  assert not changed(before["disc"], init_disc)
  for k in OWNERS:
    assert changed(owned(before)[k], owned(mid)[k]), k
  assert changed(before["disc_stats"], mid["disc_stats"])

  gan_config.train.num_steps = 4  # ...and resume it.
  resumed = train.train_and_evaluate(gan_config, str(tmp_path / "b"))
  for k in ("loss_dyn", "gan_temporal/loss_d", "gan_patch/loss_d"):
    assert resumed[k] == pytest.approx(straight[k], rel=1e-5), k
  a, b = (
    full_state(gan_config, tmp_path / "a"),
    full_state(gan_config, tmp_path / "b"),
  )
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5)


def test_non_finite_batch_skips_every_update(gan_config):
  gan_config.gan.start_iteration = 1
  gan_config.mesh.data = 1
  mesh = sharding.make_mesh(1)
  opts, scheds = optim.make_optimizers(gan_config.optim, 2, gan_config.gan)
  graphdef, discs, _ = state.abstract_state(gan_config, opts)
  _, params = state.split_generator(state.build_generator(gan_config))
  _, d_state = state.split_discriminators(
    state.build_discriminators(gan_config)
  )
  st = state.init_state(params, opts, d_state)
  step = train.compile_step(
    gan_config, mesh, opts, scheds, graphdef, discs, gan_active=True
  )
  rng = np.random.default_rng(0)
  poke = rng.normal(size=(8, 64, 64, 2)).astype(np.float32)
  poke[0, 5, 5, 0] = np.nan  # One bad value poisons the dynamics loss.
  batch = {
    "video": rng.integers(0, 255, (8, 11, 64, 64, 3), dtype=np.uint8),
    "poke": jnp.asarray(poke),
  }
  keep = jax.tree.map(np.asarray, st)
  new, metrics = step(st, batch, perceptual.load_vgg16_params())
  counts = jax.device_get(new["nonfinite"])
  assert counts["dyn"] == 1
  # The dynamics update is skipped; the AE and D updates saw finite inputs.
  assert not changed(
    new["params"]["fusion_block"], keep["params"]["fusion_block"]
  )
  assert not changed(new["opt"]["dyn"], keep["opt"]["dyn"])
  assert changed(new["params"]["shape_enc"], keep["params"]["shape_enc"])
  assert counts["ae_enc"] == 0 and counts["disc_temporal"] == 1
  for leaf in jax.tree.leaves(new):
    assert np.all(np.isfinite(np.asarray(leaf)))
  assert metrics["nonfinite/dyn"] == 1
