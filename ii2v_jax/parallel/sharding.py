"""Device mesh and shardings: batch over `data` x `fsdp`, state over `fsdp`.

With `fsdp` = 1 (the default) this is plain data parallelism expressed with
`NamedSharding`: state replicated, XLA inserts the gradient all-reduce. With
`fsdp` > 1 every parameter and optimizer-state array is split along one
dimension that the `fsdp` axis divides (replicated where none does), and
XLA gathers it where a step needs it whole.
"""

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

# Arrays smaller than this stay replicated: splitting a bias or a norm's
# scale saves nothing and costs a gather.
MIN_FSDP_SIZE = 2**12


def make_mesh(num_data: int = -1, devices=None, *, num_fsdp: int = 1) -> Mesh:
  """A (data, fsdp) mesh with Auto axes; num_data -1: all devices left."""
  devices = list(jax.devices() if devices is None else devices)
  if num_fsdp < 1 or len(devices) % num_fsdp:
    raise ValueError(
      f"mesh.fsdp={num_fsdp} does not divide the {len(devices)} visible devices"
    )
  if num_data == -1:
    num_data = len(devices) // num_fsdp
  if not 1 <= num_data * num_fsdp <= len(devices):
    raise ValueError(
      f"mesh.data={num_data} x mesh.fsdp={num_fsdp} but only "
      f"{len(devices)} devices are visible"
    )
  grid = np.asarray(devices[: num_data * num_fsdp])
  return Mesh(
    grid.reshape(num_data, num_fsdp),
    ("data", "fsdp"),
    axis_types=(AxisType.Auto, AxisType.Auto),
  )


def batch_devices(mesh: Mesh) -> int:
  """How many ways the batch is split: every device of the mesh."""
  return mesh.shape["data"] * mesh.shape.get("fsdp", 1)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over data x fsdp."""
  axes = tuple(a for a in ("data", "fsdp") if a in mesh.shape)
  return NamedSharding(mesh, PartitionSpec(axes))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def fsdp_spec(shape: tuple, num_fsdp: int) -> PartitionSpec:
  """`fsdp` on the largest dimension it divides; replicated otherwise."""
  if num_fsdp == 1 or int(np.prod(shape, dtype=np.int64)) < MIN_FSDP_SIZE:
    return PartitionSpec()
  order = sorted(range(len(shape)), key=lambda d: -shape[d])
  for d in order:
    if shape[d] % num_fsdp == 0:
      return PartitionSpec(*([None] * d + ["fsdp"]))
  return PartitionSpec()


def state_shardings(tree, mesh: Mesh):
  """Shardings for a pytree of arrays (or ShapeDtypeStructs) on `mesh`."""
  n = mesh.shape.get("fsdp", 1)
  return jax.tree.map(
    lambda x: NamedSharding(mesh, fsdp_spec(tuple(x.shape), n)), tree
  )


def bytes_per_device(tree, shardings) -> int:
  """Bytes that one device holds of `tree` laid out by `shardings`."""
  sizes = jax.tree.map(
    lambda x, s: (
      int(np.prod(s.shard_shape(tuple(x.shape)), dtype=np.int64))
      * np.dtype(x.dtype).itemsize
    ),
    tree,
    shardings,
  )
  return int(sum(jax.tree.leaves(sizes)))


def check_batch_size(global_batch: int, mesh: Mesh) -> int:
  """Returns the per-process batch; the global batch must split evenly."""
  n = batch_devices(mesh)
  if global_batch % n:
    raise ValueError(
      f"batch size {global_batch} does not split over {n} devices; "
      f"use a multiple of {n} (--config.train.batch_size) or set "
      "--config.mesh.data to a divisor"
    )
  return global_batch // jax.process_count()


def to_global(batch: dict, mesh: Mesh) -> dict:
  """Host-local numpy batch -> global jax arrays sharded over the batch."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(
    lambda x: jax.make_array_from_process_local_data(sharding, x), batch
  )
