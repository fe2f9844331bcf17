"""Training with 2 processes x 4 fake devices equals 1 process x 8 devices.

The processes are real `launch.py` runs joined by `jax.distributed` over
localhost (gloo collectives), writing one workdir together.
"""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np

from ii2v_jax.io import checkpoint
from ii2v_jax.models import build

ROOT = pathlib.Path(__file__).resolve().parents[1]


def launch_argv(tiny_data, workdir, steps: int) -> list[str]:
  data_dir, name = tiny_data
  return [
    sys.executable,
    str(ROOT / "launch.py"),
    "--config",
    str(ROOT / "configs" / "tiny.py"),
    "--workdir",
    str(workdir),
    f"--config.data.data_dir={data_dir}",
    f"--config.data.name={name}",
    f"--config.train.num_steps={steps}",
  ]


def run_processes(argv: list[str], count: int) -> None:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={8 // count}"
  extra = [[]]
  if count > 1:
    with socket.socket() as s:
      s.bind(("127.0.0.1", 0))
      port = s.getsockname()[1]
    extra = [
      [f"--coordinator=127.0.0.1:{port}", f"--num_processes={count}"]
      + [f"--process_id={i}"]
      for i in range(count)
    ]
  procs = [
    subprocess.Popen(
      argv + e, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    for e in extra
  ]
  for p in procs:
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out.decode()[-3000:]


def params_of(workdir):
  cfg = checkpoint.read_config(workdir)
  _, abstract = build.abstract_generator(cfg)
  return checkpoint.restore_params(workdir, abstract)


def test_two_processes_train_like_one_and_resume_exactly(tiny_data, tmp_path):
  run_processes(launch_argv(tiny_data, tmp_path / "one", 4), 1)
  run_processes(launch_argv(tiny_data, tmp_path / "two", 4), 2)
  one, step_one = params_of(tmp_path / "one")
  two, step_two = params_of(tmp_path / "two")
  assert step_one == step_two == 4
  diff = np.concatenate(
    [
      np.abs(np.asarray(x) - np.asarray(y)).ravel()
      for x, y in zip(jax.tree.leaves(one), jax.tree.leaves(two))
    ]
  )
  # The bound of the 1 vs 8 device test (tests/test_train.py): Adam turns
  # summation-order noise into at most lr per update on ~0 gradients.
  assert np.mean(diff) < 4e-6 and np.max(diff) <= 2 * 4 * 1e-4 + 1e-6

  # A checkpoint the 2-process run wrote resumes there exactly.
  run_processes(launch_argv(tiny_data, tmp_path / "resumed", 2), 2)
  run_processes(launch_argv(tiny_data, tmp_path / "resumed", 4), 2)
  resumed, _ = params_of(tmp_path / "resumed")
  for x, y in zip(jax.tree.leaves(two), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
