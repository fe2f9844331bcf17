"""Building the networks from a config: generator and discriminators.

Params leave here as pure nested dicts (`nnx.split` once, merged inside
jitted functions), so the checkpoint is exactly the state that is jitted.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from ii2v_jax.models import discriminators, generator, spectral_norm

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def build_generator(config, *, seed: int | None = None) -> generator.Generator:
  """The generator that `config.model` and `config.data` describe."""
  m = config.model
  if m.dtype not in DTYPES:
    raise ValueError(
      f"model.dtype must be one of {sorted(DTYPES)}: {m.dtype!r}"
    )
  return generator.Generator(
    resolution=config.data.resolution,
    channels=m.channels,
    poke_channels=m.poke_channels,
    min_channels=m.min_channels,
    precompute_poke_input=m.precompute_poke_input,
    colour_stats=m.get("colour_stats", False),  # absent in older workdirs
    output_head=m.get("output_head", "pixels"),
    dtype=DTYPES[m.dtype],
    rngs=nnx.Rngs(config.seed if seed is None else seed),
  )


def split_generator(model: generator.Generator):
  """(graphdef, params as a nested dict of arrays)."""
  graphdef, state = nnx.split(model)
  return graphdef, nnx.to_pure_dict(state)


def abstract_generator(config):
  """(graphdef, params as ShapeDtypeStructs) without allocating weights."""
  model = nnx.eval_shape(lambda: build_generator(config))
  return split_generator(model)


def build_discriminators(config, *, seed: int | None = None) -> dict:
  """{"patch": PatchDiscriminator, "temporal": TemporalDiscriminator}."""
  g, dtype = config.gan, DTYPES[config.model.dtype]
  rngs = nnx.Rngs((config.seed if seed is None else seed) + 1)
  return {
    "patch": discriminators.PatchDiscriminator(
      ndf=g.patch_ndf, dtype=dtype, rngs=rngs
    ),
    "temporal": discriminators.TemporalDiscriminator(
      resolution=config.data.resolution,
      num_frames=config.data.num_frames,
      base_channels=g.temporal_width,
      max_channels=4 * g.temporal_width,
      dtype=dtype,
      rngs=rngs,
    ),
  }


def split_discriminators(discs: dict):
  """(graphdefs, {"disc": params, "disc_stats": spectral state})."""
  graphdefs, disc, stats = {}, {}, {}
  for name, module in discs.items():
    graphdefs[name], p, st = nnx.split(
      module, nnx.Param, spectral_norm.SpectralState
    )
    disc[name], stats[name] = nnx.to_pure_dict(p), nnx.to_pure_dict(st)
  return graphdefs, {"disc": disc, "disc_stats": stats}


def initial_params(config) -> dict:
  """Freshly initialised generator params, built in one compiled program.

  Eager construction dispatches every initializer op by op (orthogonal
  inits are QR decompositions): jitted it is several times faster on CPU.
  """
  return jax.jit(lambda: split_generator(build_generator(config))[1])()


def initial_disc_state(config) -> dict:
  """Fresh {"disc", "disc_stats"} (jitted like `initial_params`), or {}."""
  if not config.gan.enabled:
    return {}
  return jax.jit(
    lambda: split_discriminators(build_discriminators(config))[1]
  )()


def abstract_discriminators(config):
  """(graphdefs, {"disc", "disc_stats"} as ShapeDtypeStructs) or (None, {})."""
  if not config.gan.enabled:
    return None, {}
  discs = nnx.eval_shape(lambda: build_discriminators(config))
  return split_discriminators(discs)


def count_params(params: dict) -> int:
  return int(sum(x.size for x in jax.tree.leaves(params)))
