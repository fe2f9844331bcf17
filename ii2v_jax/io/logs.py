"""Where log records go: library INFO logs to a file, warnings to the console.

orbax logs dozens of INFO lines per checkpoint and jax a few at start-up;
on the console they bury the progress bar. They stay useful when something
goes wrong, so they are kept in `<workdir>/logs/<name>.log`.
"""

import logging
import pathlib

import jax
from absl import logging as absl_logging


def process_suffix() -> str:
  """ "" for process 0 (and single-process runs), ".p<i>" for the others."""
  i = jax.process_index()
  return f".p{i}" if i else ""


def log_to_file(workdir, name: str) -> pathlib.Path:
  """Sends every log record to the file; the console keeps WARNING and up.

  Returns the log file's path (created, appended to on a resume).
  """
  path = pathlib.Path(workdir) / "logs" / f"{name}.log"
  path.parent.mkdir(parents=True, exist_ok=True)
  handler = logging.FileHandler(path)
  handler.setFormatter(absl_logging.PythonFormatter())
  logging.getLogger().addHandler(handler)
  # absl's handler is the console one (stderr when no log dir is set).
  absl_logging.get_absl_handler().setLevel(logging.WARNING)
  return path
