"""Two processes on this machine form one 8-device mesh (gloo collectives)."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

from ii2v_jax.parallel import distributed

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "distributed_worker.py"


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start_pair(mode: str) -> list[subprocess.Popen]:
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
  port = str(free_port())
  return [
    subprocess.Popen(
      [sys.executable, str(WORKER), port, str(i), mode],
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]


def test_two_processes_share_one_mesh():
  procs = start_pair("sum")
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
  results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
  for i, r in enumerate(results):
    assert r["process_index"] == i and r["process_count"] == 2
    assert r["local_devices"] == 4 and r["devices"] == 8
    assert r["shape"] == [8, 2]
    # Rows of process 0 hold 1, of process 1 hold 2: 4*2*1 + 4*2*2.
    assert r["sum"] == 24.0


def test_a_dead_process_ends_the_other_in_bounded_time():
  procs = start_pair("hang")
  t0 = time.monotonic()
  procs[1].wait(timeout=300)
  procs[0].communicate(timeout=120)
  assert procs[0].returncode != 0
  assert time.monotonic() - t0 < 120


def test_single_process_is_left_alone(monkeypatch):
  for name in ("SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE"):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.delenv("JAX_COORDINATOR_ADDRESS", raising=False)
  topo = distributed.start()
  assert topo.process_count == 1 and topo.devices == 8
  monkeypatch.setenv("SLURM_NTASKS", "4")
  assert distributed.cluster_detected()
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
  monkeypatch.delenv("JAX_NUM_PROCESSES", raising=False)
  try:
    distributed.start()
  except ValueError as e:
    assert "process count" in str(e)
  else:
    raise AssertionError("a coordinator without a process count must fail")
