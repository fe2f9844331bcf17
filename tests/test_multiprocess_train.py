"""Training with 2 processes x 4 fake devices equals 1 process x 8 devices.

The processes are real `launch.py` runs joined by `jax.distributed` over
localhost (gloo collectives), writing one workdir together.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time

import jax
import numpy as np
import pytest

from ii2v_jax.io import checkpoint
from ii2v_jax.models import build

STEPS = 4  # The tiny config saves every 2 steps, keeping steps 2 and 4.


def run_processes(argv: list[str], count: int) -> str:
  """Runs `count` processes of `argv` as one job; process 0's output.

  Each process writes to its own file: a failure shows every process's
  output, and none can stall on a pipe that is not being read.
  """
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={8 // count}"
  extra = [[]]
  if count > 1:
    # Only process 0 writes jax's compilation cache, and process 1 never
    # hits it: process 0 would load its programs in seconds while process
    # 1 compiles, but gloo gives processes 30 s to meet at a collective.
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    with socket.socket() as s:
      s.bind(("127.0.0.1", 0))
      port = s.getsockname()[1]
    extra = [
      [f"--coordinator=127.0.0.1:{port}", f"--num_processes={count}"]
      + [f"--process_id={i}"]
      for i in range(count)
    ]
  with contextlib.ExitStack() as files:
    outs = [files.enter_context(tempfile.TemporaryFile()) for _ in extra]
    procs = [
      subprocess.Popen(argv + e, env=env, stdout=o, stderr=subprocess.STDOUT)
      for e, o in zip(extra, outs)
    ]
    deadline = time.monotonic() + 900
    with contextlib.suppress(subprocess.TimeoutExpired):
      for p in procs:
        p.wait(timeout=max(1.0, deadline - time.monotonic()))
    for p in procs:  # Timed out: end the rest (killed shows as -9).
      if p.poll() is None:
        p.kill()
        p.wait()
    texts = []
    for o in outs:
      o.seek(0)
      texts.append(o.read().decode(errors="replace"))
  failed = [
    f"process {i} exited {p.returncode}:\n{t[-3000:]}"
    for i, (p, t) in enumerate(zip(procs, texts))
    if p.returncode != 0
  ]
  assert not failed, "\n".join(failed)
  return texts[0]


def params_of(workdir):
  cfg = checkpoint.read_config(workdir)
  _, abstract = build.abstract_generator(cfg)
  return checkpoint.restore_params(workdir, abstract)


def assert_within_adam_noise(a, b):
  """The bound of the 1 vs 8 device test (tests/test_train.py): Adam turns
  summation-order noise into at most lr per update on ~0 gradients."""
  diff = np.concatenate(
    [
      np.abs(np.asarray(x) - np.asarray(y)).ravel()
      for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    ]
  )
  assert np.mean(diff) < 4e-6 and np.max(diff) <= 2 * STEPS * 1e-4 + 1e-6, (
    np.mean(diff),
    np.max(diff),
  )


def resume_from_step_2(launch_argv, src, dst, count: int) -> str:
  """Copies run `src` without its last step and trains it on in `count`
  processes; process 0's output."""
  shutil.copytree(src, dst)
  shutil.rmtree(dst / "checkpoints" / str(STEPS))
  argv = launch_argv(dst, f"--config.train.num_steps={STEPS}")
  return run_processes(argv, count)


@pytest.fixture(scope="module")
def runs(launch_argv, tmp_path_factory):
  """Workdirs of the tiny config trained by 1 and by 2 processes."""
  root = tmp_path_factory.mktemp("runs")
  for name, count in (("one", 1), ("two", 2)):
    argv = launch_argv(root / name, f"--config.train.num_steps={STEPS}")
    run_processes(argv, count)
  return root


def test_two_processes_train_like_one(runs):
  one, step_one = params_of(runs / "one")
  two, step_two = params_of(runs / "two")
  assert step_one == step_two == STEPS
  assert_within_adam_noise(one, two)


def test_a_two_process_checkpoint_resumes_there_exactly(
  launch_argv, runs, tmp_path
):
  resume_from_step_2(launch_argv, runs / "two", tmp_path / "w", 2)
  two, _ = params_of(runs / "two")
  resumed, step = params_of(tmp_path / "w")
  assert step == STEPS
  for x, y in zip(jax.tree.leaves(two), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("src, count", [("two", 1), ("one", 2)])
def test_a_checkpoint_resumes_with_another_process_count(
  launch_argv, runs, tmp_path, src, count
):
  """The data position counts global batches: steps 3 and 4 see the same
  clips as in the run that wrote the checkpoint, so the end agrees with it
  within the noise of a different summation order."""
  out = resume_from_step_2(launch_argv, runs / src, tmp_path / "w", count)
  was = 2 if src == "two" else 1
  assert f"checkpoint written by {was} processes, resumed by {count}" in out
  resumed, step = params_of(tmp_path / "w")
  assert step == STEPS
  assert_within_adam_noise(params_of(runs / src)[0], resumed)
