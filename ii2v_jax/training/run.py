"""What `launch.py` runs once its flags are parsed: train or describe.

Returns the process exit status: 0, or 2 for a user error reported in one
line (nothing compiled or written before it).
"""

import sys

import jax

from configs import validate
from ii2v_jax.io import checkpoint, logs
from ii2v_jax.parallel import distributed as dist
from ii2v_jax.training import describe, preflight, train


def run(
  config,
  workdir: str,
  *,
  mode: str,
  compile_step: bool,
  typed: dict,
  distributed: dict,
  console_logs: bool,
) -> int:
  try:  # Before anything asks jax for its devices.
    dist.start(**distributed)
    preflight.check_run(config, workdir, typed, train=mode == "train")
  except (ValueError, validate.ConfigError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if mode == "describe":
    describe.describe(config, compile_step=compile_step)
    return 0
  say = print if jax.process_index() == 0 else lambda *_: None
  if not console_logs:
    log = logs.log_to_file(workdir, f"train{logs.process_suffix()}")
    say(f"workdir {workdir}; library logs in {log}")
  try:
    metrics = train.train_and_evaluate(config, workdir)
  except checkpoint.CheckpointError as e:  # none intact, or a changed shape
    print(f"error: {e}", file=sys.stderr)
    return 2
  if "loss_dyn" in metrics:
    say(
      f"done: step {config.train.num_steps}, loss_dyn {metrics['loss_dyn']:.4f}"
    )
  say(f"checkpoints: {workdir}/checkpoints  tensorboard: {workdir}/tb")
  return 0
