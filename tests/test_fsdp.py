"""FSDP layout: which dimension each array is split along, bytes per device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from ii2v_jax.parallel import sharding


def test_fsdp_spec_picks_the_largest_dimension_that_divides():
  assert sharding.fsdp_spec((3, 3, 1024, 512), 4) == P(None, None, "fsdp")
  assert sharding.fsdp_spec((3, 3, 6, 1030), 4) == P()  # none divides
  assert sharding.fsdp_spec((3, 3, 6, 1030), 2) == P(None, None, None, "fsdp")
  assert sharding.fsdp_spec((4096, 7), 4) == P("fsdp")
  assert sharding.fsdp_spec((64,), 4) == P()  # small: replicated
  assert sharding.fsdp_spec((3, 3, 1024, 512), 1) == P()


def test_mesh_shapes_and_bad_sizes():
  mesh = sharding.make_mesh(2, num_fsdp=4)
  assert dict(mesh.shape) == {"data": 2, "fsdp": 4}
  assert sharding.batch_devices(mesh) == 8
  assert dict(sharding.make_mesh(-1, num_fsdp=2).shape) == {
    "data": 4,
    "fsdp": 2,
  }
  with pytest.raises(ValueError, match="mesh.fsdp=3"):
    sharding.make_mesh(-1, num_fsdp=3)
  with pytest.raises(ValueError, match="mesh.data=4 x mesh.fsdp=4"):
    sharding.make_mesh(4, num_fsdp=4)


def test_state_is_split_about_four_ways_and_placed_accordingly():
  mesh = sharding.make_mesh(2, num_fsdp=4)
  tree = {
    "conv": jnp.ones((3, 3, 256, 128)),
    "dense": jnp.ones((1000, 64)),
    "odd": jnp.ones((3, 3, 7, 9)),  # 567 values: replicated
  }
  shardings = sharding.state_shardings(tree, mesh)
  placed = jax.device_put(tree, shardings)
  per_device = sharding.bytes_per_device(tree, shardings)
  whole = sum(x.nbytes for x in jax.tree.leaves(tree))
  assert per_device == (3 * 3 * 256 * 128 + 1000 * 64) * 4 // 4 + 567 * 4
  assert per_device < 0.26 * whole
  # What a device really holds agrees with the count.
  held = sum(
    x.addressable_shards[0].data.nbytes for x in jax.tree.leaves(placed)
  )
  assert held == per_device
  np.testing.assert_array_equal(np.asarray(placed["dense"]), 1.0)


def test_reference_state_is_split_about_four_ways():
  """Parameters and all three Adam states of the reference generator and
  both discriminators, on a data 2 x fsdp 4 mesh."""
  from configs import iper
  from ii2v_jax.training import optim, state

  c = iper.get_config()
  optimizers, _ = optim.make_optimizers(c.optim, 1, c.gan)
  _, _, abstract = state.abstract_state(c, optimizers)
  mesh = sharding.make_mesh(2, num_fsdp=4)
  for name in ("params", "opt", "disc"):
    tree = abstract[name]
    whole = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))
    held = sharding.bytes_per_device(tree, sharding.state_shardings(tree, mesh))
    assert 0.25 <= held / whole < 0.27, (name, held / whole)
