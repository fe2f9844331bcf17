"""The adversarial phase: all optimizers move, exact resume, health checks."""

import jax
import numpy as np
import pytest

from ii2v_jax.io import checkpoint
from ii2v_jax.models import build
from ii2v_jax.parallel import sharding
from ii2v_jax.pretrained import perceptual
from ii2v_jax.training import optim, state, train

OWNERS = ("ae_enc", "ae_dec", "dyn", "disc_patch", "disc_temporal")


def full_state(config, workdir, step=None):
  opts, _ = optim.make_optimizers(config.optim, 2, config.gan)
  _, _, abstract = state.abstract_state(config, opts)
  mngr = checkpoint.manager(workdir)
  if step is None:
    st, _ = checkpoint.restore_latest(mngr, abstract)
  else:
    st = mngr.restore(
      step,
      args=checkpoint.ocp.args.Composite(
        state=checkpoint.ocp.args.StandardRestore(abstract)
      ),
    )["state"]
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
def gan_config(tiny_data32):
  from configs import tiny

  c = tiny.get_config()
  c.data.data_dir, c.data.name = tiny_data32
  c.data.resolution = 32
  c.gan.start_iteration = 3  # Iterations 3 and 4 are adversarial.
  return c


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
  before = full_state(gan_config, tmp_path / "b", step=2)
  # One GAN iteration (2 -> 3) moves all five Adam-owned subtrees and the
  # spectral-norm vectors; D params did not move before the GAN start.
  init_disc = build.initial_disc_state(gan_config)["disc"]
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
  # The same program as the training runs above (8 devices, GAN phase), so
  # the compilation cache serves it.
  mesh = sharding.make_mesh(-1)
  opts, scheds = optim.make_optimizers(gan_config.optim, 2, gan_config.gan)
  graphdef, discs, _ = state.abstract_state(gan_config, opts)
  init = jax.jit(
    lambda p, d: state.init_state(p, opts, d),
    out_shardings=sharding.replicated(mesh),
  )
  st = init(
    build.initial_params(gan_config), build.initial_disc_state(gan_config)
  )
  step = train.compile_step(
    gan_config, mesh, opts, scheds, graphdef, discs, gan_active=True
  )
  rng = np.random.default_rng(0)
  poke = rng.normal(size=(8, 32, 32, 2)).astype(np.float32)
  poke[0, 5, 5, 0] = np.nan  # One bad value poisons the dynamics loss.
  batch = sharding.to_global(
    {
      "video": rng.integers(0, 255, (8, 11, 32, 32, 3), dtype=np.uint8),
      "poke": poke,
    },
    mesh,
  )
  keep = jax.tree.map(np.asarray, st)
  vgg = jax.device_put(
    perceptual.load_vgg16_params(), sharding.replicated(mesh)
  )
  new, metrics = step(st, batch, vgg)
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
