"""Writing a converted run beside the workdir and swapping it in.

A conversion never touches an existing workdir until the new one is
complete and restores: it is built in a hidden folder beside it
(`.<name>.converting-<pid>`, same filesystem), then the old workdir is
renamed aside, the new one renamed into place, and the old one removed.
A failure at any point before the swap leaves the old workdir as it was.
"""

import contextlib
import os
import pathlib
import shutil

from ii2v_jax.convert.torch_checkpoint import ConversionError


def check_target(workdir, *, force: bool) -> pathlib.Path:
  """The workdir as a path; raises ConversionError if it may not be used."""
  workdir = pathlib.Path(workdir)
  if workdir.exists() and not workdir.is_dir():
    raise ConversionError(f"--workdir {workdir} is a file, not a folder")
  ckpt_dir = workdir / "checkpoints"
  if ckpt_dir.is_dir() and any(ckpt_dir.iterdir()) and not force:
    raise ConversionError(
      f"{workdir} already holds checkpoints; choose a new --workdir or "
      "pass --force to replace them"
    )
  parent = workdir.absolute().parent
  if not parent.is_dir():
    try:
      parent.mkdir(parents=True)
    except OSError as e:
      raise ConversionError(f"cannot create --workdir {workdir}: {e}") from e
  if not os.access(parent, os.W_OK):
    raise ConversionError(f"cannot write beside --workdir {workdir}")
  return workdir


@contextlib.contextmanager
def staged(workdir: pathlib.Path):
  """Yields an empty folder to build the new run in; swaps it in on success.

  On an exception the folder is removed and the workdir is untouched.
  """
  stage = workdir.with_name(f".{workdir.name}.converting-{os.getpid()}")
  shutil.rmtree(stage, ignore_errors=True)
  stage.mkdir(parents=True)
  try:
    yield stage
  except BaseException:
    shutil.rmtree(stage, ignore_errors=True)
    raise
  old = workdir.with_name(f".{workdir.name}.replaced-{os.getpid()}")
  if workdir.exists():
    workdir.rename(old)
  stage.rename(workdir)
  shutil.rmtree(old, ignore_errors=True)
