"""Test setup: 8 fake CPU devices, set before jax is imported anywhere."""

import os
import pathlib
import sys
import tempfile

os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests compile the same tiny programs in several runs; a session-wide
# persistent cache turns the repeats into disk reads.
os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="ii2v_xla_cache_")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import pytest  # noqa: E402

TINY_TRAIN, TINY_TEST = 16, 8


def _build_tiny(tmp_path_factory, resolution):
  from datasets.articulated_pokes import build

  data_dir = tmp_path_factory.mktemp(f"data{resolution}")
  builder = build.build(
    str(data_dir), resolution, num_train=TINY_TRAIN, num_test=TINY_TEST
  )
  name = f"{builder.info.name}/{builder.builder_config.name}"
  return str(data_dir), name


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
  """A real (small) articulated-pokes build: (data_dir, dataset name)."""
  return _build_tiny(tmp_path_factory, 64)


@pytest.fixture(scope="session")
def launch_argv(tiny_data):
  """launch_argv(workdir, *flags): `launch.py` on the tiny config and data."""
  root = pathlib.Path(__file__).resolve().parents[1]
  data_dir, name = tiny_data

  def argv(workdir, *extra) -> list[str]:
    return [
      sys.executable,
      str(root / "launch.py"),
      "--config",
      str(root / "configs" / "tiny.py"),
      "--workdir",
      str(workdir),
      f"--config.data.data_dir={data_dir}",
      f"--config.data.name={name}",
      *extra,
    ]

  return argv


@pytest.fixture(scope="session")
def tiny_data32(tmp_path_factory):
  """The same at 32x32: the GAN tests' R1 through 3-D convs is 4x cheaper."""
  return _build_tiny(tmp_path_factory, 32)


@pytest.fixture
def tiny_config(tiny_data):
  from configs import tiny

  c = tiny.get_config()
  c.data.data_dir, c.data.name = tiny_data
  return c


@pytest.fixture(scope="session")
def tiny_workdir(tiny_data, tmp_path_factory):
  """A workdir holding a briefly trained tiny model."""
  from configs import tiny
  from ii2v_jax.training import train

  c = tiny.get_config()
  c.data.data_dir, c.data.name = tiny_data
  c.train.num_steps = 2
  workdir = tmp_path_factory.mktemp("run")
  train.train_and_evaluate(c, str(workdir))
  return str(workdir)


@pytest.fixture(scope="session")
def tiny_warp_workdir(tiny_data, tmp_path_factory):
  """A tiny model with the warp head, trained 4 steps: enough that a poke
  moves the poked part and leaves far pixels alone (the serving tests)."""
  from configs import tiny
  from ii2v_jax.training import train

  c = tiny.get_config()
  c.data.data_dir, c.data.name = tiny_data
  c.model.output_head, c.model.colour_stats = "warp", True
  c.data.flow_targets, c.loss.flow_weight = True, 1.0
  c.optim.lr = 3e-3
  c.train.num_steps = c.train.checkpoint_every = 4
  c.train.batch_size, c.mesh.data = 4, 1
  workdir = tmp_path_factory.mktemp("warp_run")
  train.train_and_evaluate(c, str(workdir))
  return str(workdir)
