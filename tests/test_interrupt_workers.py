"""Ctrl-C with input worker processes (`data.num_workers > 0`).

A terminal's Ctrl-C reaches the whole process group: the grain workers
must ignore it, so that only the training loop's stop flag is set and the
run saves a whole step and exits 130, with no worker traceback.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

from ii2v_jax.io import checkpoint
from ii2v_jax.models import build

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _launch(tiny_data, workdir) -> subprocess.Popen:
  data_dir, name = tiny_data
  argv = [sys.executable, str(ROOT / "launch.py"), "--workdir", str(workdir)]
  argv += ["--config", str(ROOT / "configs" / "tiny.py")]
  argv += [
    f"--config.data.data_dir={data_dir}",
    f"--config.data.name={name}",
    "--config.data.num_workers=2",
    "--config.mesh.data=1",
    "--config.train.batch_size=2",
    "--config.train.num_steps=100000",  # Only the signal ends it.
    "--config.train.checkpoint_every=2",
    "--config.train.sample_every=0",
    "--config.gan.enabled=False",
  ]
  return subprocess.Popen(
    argv,
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    start_new_session=True,  # Its own process group, as in a terminal.
  )


def _has_workers(pid: int) -> bool:
  """Whether `pid` has started a multiprocessing (spawn) child."""
  for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
    try:
      ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
      cmd = (stat.parent / "cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
      continue  # Gone meanwhile.
    if ppid == pid and b"spawn_main" in cmd:
      return True
  return False


def test_ctrl_c_on_the_process_group_saves_and_exits_130(tiny_data, tmp_path):
  workdir = tmp_path / "run"
  proc = _launch(tiny_data, workdir)
  try:
    # The hardest moment: workers just spawned, still starting Python
    # (before grain runs their worker_init_fn), the first batch not ready.
    end = time.monotonic() + 400
    while not _has_workers(proc.pid):
      assert proc.poll() is None, proc.communicate()[1][-3000:]
      assert time.monotonic() < end, "no input workers after 400 s"
      time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.communicate()
  assert proc.returncode == 130, err[-3000:]
  assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
  last = err.strip().splitlines()[-1]
  assert last.startswith("interrupted at step "), err[-3000:]
  step = int(last.split()[3].rstrip(":"))

  # The newest step is the one announced, intact, and its input position
  # is after exactly `step` batches (summed over the workers' slices).
  config = checkpoint.read_config(workdir)
  _, abstract = build.abstract_generator(config)
  assert checkpoint.restore_params(workdir, abstract)[1] == step
  meta = workdir / "checkpoints" / str(step) / "data" / "metadata"
  data = json.loads(meta.read_text())
  data = data.get("iterator", data)  # Bare, or with its process count.
  taken = [s["next_index"] for s in data["iterators_in_use_states"]]
  assert sum(taken) == step, data
