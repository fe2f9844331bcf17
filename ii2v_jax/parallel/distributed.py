"""Multi-process start-up: one jax process per host (or per GPU), one mesh.

`start` calls `jax.distributed.initialize` only when the run is
multi-process, so a single-process run is unchanged:
  * explicit: a coordinator address, process count and id from arguments
    or the `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`
    environment variables (any machines, several processes on one);
  * detected: a Slurm job step or an Open MPI job with more than one task
    (jax reads the rest from their environment);
  * `mode="on"` forces jax's own detection (TPU pod slices, Kubernetes).
On CPU the cross-process collectives go through gloo.
"""

import dataclasses
import os

import jax

MODES = ("auto", "on", "off")
# jax's timeouts are minutes long; a dead peer should end a run sooner.
HEARTBEAT_TIMEOUT_S = 30


@dataclasses.dataclass(frozen=True)
class Topology:
  """What a run sees after start-up."""

  process_index: int
  process_count: int
  local_devices: int
  devices: int


def _env_int(name: str) -> int | None:
  value = os.environ.get(name)
  return int(value) if value not in (None, "") else None


def cluster_detected() -> bool:
  """A Slurm or Open MPI launch of more than one task."""
  for name in ("SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE"):
    if (_env_int(name) or 1) > 1:
      return True
  return False


def start(
  mode: str = "auto",
  *,
  coordinator: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> Topology:
  """Joins the other processes when the run is multi-process."""
  if mode not in MODES:
    raise ValueError(f"distributed mode must be one of {MODES}: {mode!r}")
  coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
  if num_processes is None:
    num_processes = _env_int("JAX_NUM_PROCESSES")
  if process_id is None:
    process_id = _env_int("JAX_PROCESS_ID")
  explicit = coordinator is not None
  if explicit and (num_processes is None or process_id is None):
    raise ValueError(
      "a coordinator address needs the process count and this process's "
      "id too (--num_processes/--process_id or JAX_NUM_PROCESSES/"
      "JAX_PROCESS_ID)"
    )
  if mode != "off" and (explicit or mode == "on" or cluster_detected()):
    if jax.config.jax_platforms in (None, "", "cpu"):
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
      coordinator_address=coordinator,
      num_processes=num_processes,
      process_id=process_id,
      heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
    )
  return Topology(
    process_index=jax.process_index(),
    process_count=jax.process_count(),
    local_devices=jax.local_device_count(),
    devices=jax.device_count(),
  )
