"""Exact interruption: SIGINT/SIGTERM at seeded points of a short run.

Each process is `tests/interrupt_worker.py` with the same arguments but its
own plan of signals (at a batch, during a checkpoint save, in orbax's
background finalize thread, during start-up, and a double Ctrl-C that
exits at once). Every interrupted round resumes from the workdir, and the
final checkpoint must equal that of an uninterrupted run bit for bit.
"""

import json
import os
import pathlib
import random
import signal
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from ii2v_jax.training import train

WORKER = pathlib.Path(__file__).with_name("interrupt_worker.py")
NUM_STEPS = 20


def _plans(seed: int) -> list[list]:
  """Rounds per process; each process's last signal sets its exit status."""
  rng = random.Random(seed)
  sig = lambda: rng.choice(["SIGINT", "SIGTERM"])
  step = lambda: ["step", sig(), rng.randint(1, 2), rng.uniform(0, 0.3)]
  save = lambda: ["save", sig(), 1, rng.uniform(0, 0.05)]
  finalize = lambda: ["finalize", sig(), 1, 0.0]
  startup = lambda: ["startup", sig(), 0, rng.uniform(0, 4.0)]
  return [
    [step(), save(), finalize(), ["save", "SIGINT", 1, 0.0]],
    [startup(), finalize(), step(), ["step", "SIGTERM", 1, 0.1]],
    [["double", "SIGINT", 1, 0.0]],
    [save(), step()],
  ]


def _run(tiny_data, workdir, plan) -> subprocess.CompletedProcess:
  args = [sys.executable, str(WORKER), *tiny_data, str(workdir)]
  args += [str(NUM_STEPS), json.dumps(plan)]
  return subprocess.run(args, capture_output=True, text=True, timeout=600)


def _final(workdir) -> tuple:
  """(state leaves, data-iterator state) of the step NUM_STEPS."""
  step = pathlib.Path(workdir) / "checkpoints" / str(NUM_STEPS)
  state = ocp.StandardCheckpointer().restore(step / "state")
  data = json.loads((step / "data" / "metadata").read_text())
  flat = jax.tree_util.tree_flatten_with_path(state)[0]
  return [(jax.tree_util.keystr(k), v) for k, v in flat], data


def test_signals_at_random_points_resume_bit_identically(tiny_data, tmp_path):
  sys.path.insert(0, str(WORKER.parent))
  import interrupt_worker  # noqa: PLC0415

  c = interrupt_worker.config(*tiny_data, NUM_STEPS)
  train.train_and_evaluate(c, str(tmp_path / "straight"))

  workdir = tmp_path / "interrupted"
  signals = 0
  for plan in _plans(seed=14):
    out = _run(tiny_data, workdir, plan)
    last = plan[-1]
    want = 128 + (2 if last[1] == "SIGINT" else 15)
    assert out.returncode == want, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    rounds = [ln for ln in out.stdout.splitlines() if ln.startswith("round")]
    if last[0] == "double":
      assert "SIGINT again: exiting now" in out.stderr
      signals += 2
    else:
      assert len(rounds) == len(plan), out.stdout
      assert out.stderr.strip().splitlines()[-1].startswith("interrupted ")
      signals += len(plan)
  assert signals >= 10
  out = _run(tiny_data, workdir, [])
  assert out.returncode == 0, out.stderr[-3000:]
  assert not (workdir / "checkpoints_damaged").exists()

  (got, got_data), (want, want_data) = (
    _final(workdir),
    _final(tmp_path / "straight"),
  )
  assert got_data == want_data
  assert [k for k, _ in got] == [k for k, _ in want]
  for (key, a), (_, b) in zip(got, want):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and np.array_equal(a, b), key
  assert int(dict(got)["['step']"]) == NUM_STEPS


def test_a_signal_stops_at_the_next_step_boundary(
  tiny_data, tmp_path, monkeypatch
):
  """SIGINT in the middle of step 3 (its batch already taken): step 3
  finishes and is saved with the iterator after its batch."""
  sys.path.insert(0, str(WORKER.parent))
  import interrupt_worker  # noqa: PLC0415

  calls = {"n": 0}
  real = train.sharding.to_global

  def interrupting(batch, mesh):
    calls["n"] += 1
    if calls["n"] == 3:
      os.kill(os.getpid(), signal.SIGINT)
    return real(batch, mesh)

  monkeypatch.setattr(train.sharding, "to_global", interrupting)
  c = interrupt_worker.config(*tiny_data, 6)  # Compiled by the test above.
  c.train.checkpoint_every = 100
  with pytest.raises(train.Interrupted) as info:
    train.train_and_evaluate(c, str(tmp_path))
  assert info.value.code == 130 and info.value.step == 3
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
  step = tmp_path / "checkpoints" / "3"
  data = json.loads((step / "data" / "metadata").read_text())
  assert data["iterator"]["next_index"] == 3 and data["process_count"] == 1
  assert sorted(p.name for p in step.parent.iterdir()) == ["3"]


def test_sigkill_at_random_points_then_rerun_ends_bit_identical(
  tiny_data, tmp_path
):
  """kill -9 (no handler runs) at a batch, during a save, in orbax's
  finalize thread and during start-up; the same command each time after."""
  sys.path.insert(0, str(WORKER.parent))
  import interrupt_worker  # noqa: PLC0415

  c = interrupt_worker.config(*tiny_data, NUM_STEPS)
  train.train_and_evaluate(c, str(tmp_path / "straight"))
  rng = random.Random(9)
  plans = [
    [["save", "SIGKILL", 1, rng.uniform(0, 0.05)]],
    [["step", "SIGKILL", rng.randint(1, 3), rng.uniform(0, 0.3)]],
    [["finalize", "SIGKILL", 1, 0.0]],
    [["startup", "SIGKILL", 0, rng.uniform(0.5, 4.0)]],
    [["save", "SIGKILL", 2, 0.0]],
    [["step", "SIGKILL", rng.randint(1, 3), rng.uniform(0, 0.3)]],
  ]
  workdir = tmp_path / "killed"
  for plan in plans:
    out = _run(tiny_data, workdir, plan)
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
  out = _run(tiny_data, workdir, [])
  assert out.returncode == 0, out.stderr[-3000:]
  (got, got_data), (want, want_data) = (
    _final(workdir),
    _final(tmp_path / "straight"),
  )
  assert got_data == want_data
  for (key, a), (_, b) in zip(got, want):
    assert np.array_equal(np.asarray(a), np.asarray(b)), key
