"""End-to-end training on a tiny real build: sharding, resume, describe."""

import re

import jax
import numpy as np
import pytest

from ii2v_jax.io import checkpoint
from ii2v_jax.models import build
from ii2v_jax.training import describe, train


def params_of(workdir):
  cfg = checkpoint.read_config(workdir)
  _, abstract = build.abstract_generator(cfg)
  return checkpoint.restore_params(workdir, abstract)


def assert_trees_close(a, b, **tol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)


def test_trains_and_writes_checkpoints_and_logs(tiny_config, tmp_path):
  metrics = train.train_and_evaluate(tiny_config, str(tmp_path))
  assert np.isfinite(metrics["loss_dyn"]) and np.isfinite(metrics["loss_ae"])
  assert metrics["grad_norm/dyn"] > 0 and metrics["lr/ae_dec"] == 1e-4
  _, step = params_of(tmp_path)
  assert step == tiny_config.train.num_steps
  assert list((tmp_path / "tb").glob("events.*"))
  assert (tmp_path / "config.json").exists()


def test_one_and_eight_devices_give_the_same_numbers(tiny_config, tmp_path):
  assert jax.device_count() == 8
  results = {}
  for n in (1, 8):
    tiny_config.mesh.data = n
    results[n] = train.train_and_evaluate(tiny_config, str(tmp_path / str(n)))
    results[n] = (results[n], params_of(tmp_path / str(n))[0])
  for k in ("loss_ae", "loss_dyn", "loss_rec", "loss_latent"):
    np.testing.assert_allclose(results[1][0][k], results[8][0][k], rtol=1e-4)
  np.testing.assert_allclose(
    results[1][0]["grad_norm/dyn"], results[8][0]["grad_norm/dyn"], rtol=1e-3
  )
  # Summation order differs across devices; Adam turns that into at most
  # lr per step on parameters whose gradient is ~0, so compare the bulk.
  diff = np.concatenate(
    [
      np.abs(np.asarray(x) - np.asarray(y)).ravel()
      for x, y in zip(
        jax.tree.leaves(results[1][1]), jax.tree.leaves(results[8][1])
      )
    ]
  )
  # Each Adam update moves a parameter by about lr = 1e-4 (the decoder gets
  # two per step); on average the runs agree to within a few percent of that.
  assert np.mean(diff) < 4e-6 and np.max(diff) <= 2 * 4 * 1e-4 + 1e-6


def test_fsdp_gives_the_same_numbers_as_data_parallelism(tiny_config, tmp_path):
  results = {}
  for data, fsdp in ((8, 1), (2, 4)):
    tiny_config.mesh.data, tiny_config.mesh.fsdp = data, fsdp
    w = tmp_path / f"{data}x{fsdp}"
    results[fsdp] = train.train_and_evaluate(tiny_config, str(w)), w
  dp, fs = results[1][0], results[4][0]
  for k in ("loss_ae", "loss_dyn", "loss_rec", "loss_latent"):
    np.testing.assert_allclose(dp[k], fs[k], rtol=1e-4)
  # The same Adam bound as for 1 vs 8 devices: summation order differs.
  a, b = params_of(results[1][1])[0], params_of(results[4][1])[0]
  diff = np.concatenate(
    [
      np.abs(np.asarray(x) - np.asarray(y)).ravel()
      for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    ]
  )
  assert np.mean(diff) < 4e-6 and np.max(diff) <= 2 * 4 * 1e-4 + 1e-6
  # A data-parallel checkpoint resumes on the FSDP mesh (resharded).
  tiny_config.train.num_steps = 6
  more = train.train_and_evaluate(tiny_config, str(results[1][1]))
  assert np.isfinite(more["loss_dyn"])
  assert params_of(results[1][1])[1] == 6


def test_resume_continues_exactly(tiny_config, tmp_path):
  straight = train.train_and_evaluate(tiny_config, str(tmp_path / "a"))
  tiny_config.train.num_steps = 2
  train.train_and_evaluate(tiny_config, str(tmp_path / "b"))
  tiny_config.train.num_steps = 4
  resumed = train.train_and_evaluate(tiny_config, str(tmp_path / "b"))
  assert resumed["loss_dyn"] == pytest.approx(straight["loss_dyn"], rel=1e-6)
  assert_trees_close(
    params_of(tmp_path / "a")[0], params_of(tmp_path / "b")[0], rtol=1e-6
  )


def test_describe_counts_reference_generator(capsys):
  from configs import iper

  assert describe.describe(iper.get_config(), compile_step=False) == 39110819
  assert describe.describe(iper.get_config("128"), compile_step=False) == (
    40103203
  )
  out = capsys.readouterr().out
  assert out.strip().endswith("total_params: 40103203")
  assert len(re.findall(r"discriminator.patch +2,764,737\n", out)) == 2
  assert len(re.findall(r"discriminator.temporal +26,554,369\n", out)) == 2


def test_describe_without_gans_lists_no_discriminator(capsys):
  from configs import synthetic

  describe.describe(synthetic.get_config(), compile_step=False)
  assert "discriminator" not in capsys.readouterr().out


def test_describe_compiles_a_step(tiny_config, capsys):
  tiny_config.gan.enabled = False  # The GAN step compiles in the GAN tests.
  describe.describe(tiny_config, compile_step=True)
  out = capsys.readouterr().out
  assert "GFLOP" in out and "temporaries" in out
  assert out.strip().splitlines()[-1].startswith("total_params: ")


def test_resume_with_other_model_shape_is_refused(tiny_config, tmp_path):
  tiny_config.train.num_steps = 1
  train.train_and_evaluate(tiny_config, str(tmp_path))
  assert checkpoint.config_changes(tmp_path, tiny_config) == []
  tiny_config.train.num_steps = 2
  assert checkpoint.config_changes(tmp_path, tiny_config) == ["train.num_steps"]
  tiny_config.model.channels = 32
  with pytest.raises(checkpoint.CheckpointError, match="model.channels"):
    train.train_and_evaluate(tiny_config, str(tmp_path))
