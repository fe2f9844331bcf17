"""Train or describe a model: the only place that parses flags.

python launch.py --config configs/iper.py [--workdir runs/iper]
    [--config.train.batch_size=8] [--mode=train|describe]
python launch.py --config configs/iper.py:128 --mode=describe

A wrong flag or config value is reported in one line and exits with 2,
before anything compiles or writes.
"""

import pathlib
import sys

from absl import app, flags
from ml_collections import config_flags

from configs import validate

config_flags.DEFINE_config_file(
  "config",
  None,
  "Config file, optionally with :ARG (e.g. :128).",
  lock_config=True,
)
flags.DEFINE_string(
  "workdir", None, "Checkpoints and logs; default runs/<config name>."
)
flags.DEFINE_enum("mode", "train", ["train", "describe"], "What to do.")
flags.DEFINE_bool(
  "compile", True, "describe: also compile one train step (FLOPs, memory)."
)
flags.mark_flags_as_required(["config"])
FLAGS = flags.FLAGS


def default_workdir() -> str:
  path = FLAGS["config"].config_filename
  name = pathlib.Path(path.split(":")[0]).stem
  arg = path.split(":")[1] if ":" in path else ""
  return str(pathlib.Path("runs") / (f"{name}_{arg}" if arg else name))


def parse(argv: list[str]) -> list[str]:
  """absl's flags parser: a flag or config-file error is one line, exit 2."""
  try:
    return validate.parse_flags(FLAGS, argv)
  except validate.ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def main(argv):
  del argv
  # Imported here so `--help` and flag errors stay fast.
  from ii2v_jax.io import logs
  from ii2v_jax.training import describe, preflight, train

  config, train_mode = FLAGS.config, FLAGS.mode == "train"
  workdir = FLAGS.workdir or default_workdir()
  typed = validate.typed_overrides(sys.argv)
  try:
    preflight.check_run(config, workdir, typed, train=train_mode)
  except validate.ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if not train_mode:
    describe.describe(config, compile_step=FLAGS.compile)
    return 0
  if not FLAGS["verbosity"].present:  # --verbosity keeps them on the console
    log = logs.log_to_file(workdir, "train")
    print(f"workdir {workdir}; library logs in {log}")
  metrics = train.train_and_evaluate(config, workdir)
  if "loss_dyn" in metrics:
    print(
      f"done: step {config.train.num_steps}, loss_dyn {metrics['loss_dyn']:.4f}"
    )
  print(f"checkpoints: {workdir}/checkpoints  tensorboard: {workdir}/tb")
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=parse)
