"""`launch.py --mode=describe`: config, parameter counts, step cost.

The last line printed is `total_params: N` (the generator's parameters).
"""

import jax
import numpy as np

from ii2v_jax.models import build
from ii2v_jax.parallel import sharding
from ii2v_jax.pretrained import perceptual
from ii2v_jax.training import optim, state, train


def step_cost(config, graphdef, discs, abstract_state, optimizers, schedules):
  """(FLOPs, memory analysis) of one compiled train step, nothing run.

  With discriminators, the step of the GAN phase (the most expensive).
  """
  mesh = sharding.make_mesh(config.mesh.data, num_fsdp=config.mesh.fsdp)
  step_fn = train.compile_step(
    config,
    mesh,
    optimizers,
    schedules,
    graphdef,
    discs,
    gan_active=discs is not None,
    state_shardings=sharding.state_shardings(abstract_state, mesh),
  )
  b, t, s = (
    config.train.batch_size,
    config.data.num_frames,
    config.data.resolution,
  )
  batch = {
    "video": jax.ShapeDtypeStruct((b, t + 1, s, s, 3), np.uint8),
    "poke": jax.ShapeDtypeStruct((b, s, s, 2), np.float32),
  }
  vgg = jax.eval_shape(lambda: perceptual.params_from_config(config.loss))
  compiled = step_fn.lower(abstract_state, batch, vgg).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan"))), compiled.memory_analysis()


def _gib(n: float) -> str:
  return f"{n / 2**30:.2f} GiB"


def state_bytes_line(config, abstract) -> str:
  """Per-device bytes of parameters and optimizer state on the run's mesh."""
  fsdp = config.mesh.fsdp
  mesh = sharding.make_mesh(config.mesh.data, num_fsdp=fsdp)
  parts = {}
  for name in ("params", "opt"):
    tree = abstract[name]
    parts[name] = sharding.bytes_per_device(
      tree, sharding.state_shardings(tree, mesh)
    )
  return (
    f"per device (mesh data {mesh.shape['data']} x fsdp {fsdp}): "
    f"parameters {_gib(parts['params'])}, "
    f"optimizer state {_gib(parts['opt'])}"
  )


def describe(config, *, compile_step: bool = True) -> int:
  """Prints the description; returns the generator's parameter count."""
  print(config)
  optimizers, schedules = optim.make_optimizers(config.optim, 1, config.gan)
  graphdef, discs, abstract = state.abstract_state(config, optimizers)
  print("parameters:")
  rows = [(f"generator.{k}", sub) for k, sub in abstract["params"].items()]
  rows.append(("generator total", abstract["params"]))
  rows += [
    (f"discriminator.{k}", d) for k, d in abstract.get("disc", {}).items()
  ]
  for label, sub in rows:
    print(f"  {label:<24} {build.count_params(sub):>12,}")
  total = build.count_params(abstract["params"])
  print(state_bytes_line(config, abstract))
  if compile_step:
    flops, mem = step_cost(
      config, graphdef, discs, abstract, optimizers, schedules
    )
    phase = "GAN phase, " if discs is not None else ""
    print(
      f"train step ({phase}batch {config.train.batch_size}, "
      f"{jax.devices()[0].platform}): {flops / 1e9:,.1f} GFLOP"
    )
    if mem is not None:
      print(
        f"  memory: arguments {_gib(mem.argument_size_in_bytes)}, "
        f"outputs {_gib(mem.output_size_in_bytes)}, "
        f"temporaries {_gib(mem.temp_size_in_bytes)}"
      )
  print(f"total_params: {total}")
  return total
