"""Device mesh and shardings: the batch is split over a `data` mesh axis.

Parameters and optimizer state are replicated; this is plain data
parallelism expressed with `NamedSharding`, so XLA inserts the gradient
all-reduce. Room is left for `fsdp`/`model` axes in the mesh shape.
"""

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec


def make_mesh(num_data: int = -1, devices=None) -> Mesh:
  """A 1-D mesh over `num_data` devices (-1: all) with an Auto `data` axis."""
  devices = list(jax.devices() if devices is None else devices)
  if num_data == -1:
    num_data = len(devices)
  if not 1 <= num_data <= len(devices):
    raise ValueError(
      f"mesh.data={num_data} but only {len(devices)} devices are visible"
    )
  grid = np.asarray(devices[:num_data]).reshape(num_data)
  return Mesh(grid, ("data",), axis_types=(AxisType.Auto,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over the data axis."""
  return NamedSharding(mesh, PartitionSpec("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def check_batch_size(global_batch: int, mesh: Mesh) -> int:
  """Returns the per-process batch; the global batch must split evenly."""
  n = mesh.shape["data"]
  if global_batch % n:
    raise ValueError(
      f"batch size {global_batch} does not split over {n} devices; "
      f"use a multiple of {n} (--config.train.batch_size) or set "
      "--config.mesh.data to a divisor"
    )
  return global_batch // jax.process_count()


def to_global(batch: dict, mesh: Mesh) -> dict:
  """Host-local numpy batch -> global jax arrays sharded over `data`."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(
    lambda x: jax.make_array_from_process_local_data(sharding, x), batch
  )
