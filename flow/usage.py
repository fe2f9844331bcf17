"""Command-line helpers shared by flow's and the builders' CLIs.

A user error is one line on stderr and exit status 2 (argparse's own
errors included, without the usage block), checked before anything is
written.
"""

import argparse
import os
import pathlib
import sys
import tempfile


class UsageError(ValueError):
  """A bad flag value; the message names the flag as typed."""


class Parser(argparse.ArgumentParser):
  """argparse whose errors are one line: `error: ...` and exit 2."""

  def error(self, message: str):
    print(f"error: {message} (see --help)", file=sys.stderr)
    sys.exit(2)


def at_least(minimum: int):
  """An argparse `type`: an int >= minimum."""

  def parse(text: str) -> int:
    try:
      value = int(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{text!r} is not an int") from None
    if value < minimum:
      raise argparse.ArgumentTypeError(f"{value} must be >= {minimum}")
    return value

  return parse


def writable_dir(path, flag: str) -> pathlib.Path:
  """`path` as an output folder we can create or write into.

  Tried with an empty probe folder, removed at once (os.access trusts
  root); nothing else is written.

  Raises:
    UsageError: a file, or a place that cannot be written.
  """
  path = pathlib.Path(path)
  if path.exists() and not path.is_dir():
    raise UsageError(f"{flag} {path}: is a file, not a directory")
  probe = path
  while not probe.exists():
    if probe.parent == probe:
      break
    probe = probe.parent
  if not probe.is_dir():
    raise UsageError(f"{flag} {path}: {probe} is a file, not a directory")
  try:
    os.rmdir(tempfile.mkdtemp(prefix=".probe_", dir=probe))
  except OSError as e:
    raise UsageError(f"{flag} {path}: cannot write there ({e.strerror})")
  return path
