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
flags.DEFINE_enum(
  "distributed", "auto", ["auto", "on", "off"],
  "Multi-process start-up: auto = when a coordinator is given or a Slurm/"
  "Open MPI job has several tasks; on = jax's own detection (TPU pods).",
)  # fmt: skip
flags.DEFINE_string("coordinator", None, "host:port of process 0.")
flags.DEFINE_integer("num_processes", None, "Processes in the run.")
flags.DEFINE_integer("process_id", None, "This process's index.")
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
  from ii2v_jax.training import run

  return run.run(
    FLAGS.config,
    FLAGS.workdir or default_workdir(),
    mode=FLAGS.mode,
    compile_step=FLAGS.compile,
    typed=validate.typed_overrides(sys.argv),
    distributed=dict(
      mode=FLAGS.distributed,
      coordinator=FLAGS.coordinator,
      num_processes=FLAGS.num_processes,
      process_id=FLAGS.process_id,
    ),
    console_logs=FLAGS["verbosity"].present,
  )


if __name__ == "__main__":
  app.run(main, flags_parser=parse)
