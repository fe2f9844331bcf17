"""Checks of a run against the world before anything compiles or writes.

`configs.validate` checks the config alone; here are the checks that look
at the devices, the prepared dataset and the workdir. Each failure is one
`ConfigError` line naming the value as the user gave it and what would be
valid (launch.py prints it and exits with status 2).
"""

import contextlib
import json
import logging
import os
import pathlib
import tempfile

import jax

from configs import validate
from configs.validate import ConfigError
from ii2v_jax.data import pipeline
from ii2v_jax.io import checkpoint

# Keys whose change makes a workdir's checkpoints unrestorable (as
# `ii2v_jax.io.checkpoint.config_changes` decides).
SHAPE_KEYS = ("model.", "data.resolution")


def check_devices(config, typed: dict) -> int:
  """mesh.data x mesh.fsdp against the visible devices, the batch against
  the mesh; returns the number of devices the batch is split over."""
  count = len(jax.devices())
  fsdp = config.mesh.get("fsdp", 1)
  if count % fsdp:
    validate.fail(
      "mesh.fsdp", fsdp, typed, f"must divide the {count} visible devices"
    )
  data = count // fsdp if config.mesh.data == -1 else config.mesh.data
  n = data * fsdp
  if n > count:
    product = f"mesh.data x mesh.fsdp = {n} but " if fsdp > 1 else ""
    validate.fail(
      "mesh.data",
      data,
      typed,
      f"{product}only {count} devices are visible (-1 = all)",
    )
  if config.train.batch_size % n:
    validate.fail(
      "train.batch_size",
      config.train.batch_size,
      typed,
      f"must be a multiple of the {n} devices of the mesh",
    )
  return n


def _writable(path: pathlib.Path) -> bool:
  """Whether `path` (or its nearest existing ancestor) takes a new entry:
  tried with an empty folder, removed at once (os.access trusts root)."""
  while not path.exists():
    if path.parent == path:
      return False
    path = path.parent
  try:
    os.rmdir(tempfile.mkdtemp(prefix=".ii2v_probe_", dir=path))
  except OSError:
    return False
  return True


def check_workdir(workdir: str, config, typed: dict) -> None:
  """A directory we may write, whose earlier run had the same shapes."""
  path = pathlib.Path(workdir)
  flag = f"--workdir {workdir}"
  if path.exists() and not path.is_dir():
    raise ConfigError(f"{flag}: is a file, not a directory; pick a new one")
  if not _writable(path):
    raise ConfigError(f"{flag}: cannot be written here; pick another place")
  stored = path / "config.json"
  if not stored.exists():
    return
  try:
    old = checkpoint.flat_keys(json.loads(stored.read_text()))
  except (OSError, ValueError, AttributeError):
    raise ConfigError(
      f"{flag}: its config.json is unreadable (not a saved config); "
      "use a new --workdir"
    ) from None
  new = checkpoint.flat_keys(json.loads(config.to_json_best_effort()))
  for key in sorted(new):
    if key.startswith(SHAPE_KEYS) and old.get(key) != new[key]:
      validate.fail(
        key,
        new[key],
        typed,
        f"{workdir} was trained with {key}={old.get(key)!r}, whose "
        "checkpoints cannot take it; use a new --workdir",
      )


def _available(data_dir: str) -> str:
  root = pathlib.Path(data_dir)
  found = sorted(
    "/".join(p.parent.relative_to(root).parts[:-1])
    for p in root.glob("*/*/*.*.*/dataset_info.json")
  )
  return ", ".join(found) if found else "none"


def check_data(config, typed: dict, num_devices: int) -> None:
  """The dataset exists, stores clips of the configured shape, and its
  train split holds a batch (test split: previews and quick metrics)."""
  d = config.data
  try:
    pipeline.dataset_dir(d.data_dir, d.name)
  except pipeline.DataError:
    where = f"{d.data_dir} holds: {_available(d.data_dir)}"
    validate.fail(
      "data.name", d.name, typed, f"no prepared dataset of that name ({where})"
    )
  splits = [d.train_split]
  if config.train.sample_every or config.eval.every:
    splits.append(d.test_split)
  for key in ("data.train_split", "data.test_split")[: len(splits)]:
    split = d[key.split(".")[1]]
    try:
      source = pipeline.open_split(d.data_dir, d.name, split)
    except pipeline.DataError as e:
      validate.fail(key, split, typed, str(e))
    _check_clip_shape(source, config, typed)
  train = pipeline.open_split(d.data_dir, d.name, d.train_split)
  per_process = config.train.batch_size // jax.process_count()
  if len(train) < per_process:
    validate.fail(
      "train.batch_size",
      config.train.batch_size,
      typed,
      f"the train split holds only {len(train)} clips; use at most "
      f"{len(train) // num_devices * num_devices}",
    )


def _check_clip_shape(source, config, typed: dict) -> None:
  d = config.data
  if not len(source):
    validate.fail("data.name", d.name, typed, "a split of it holds no clips")
  frames, size = source[0]["video"].shape[:2]
  if size != d.resolution:
    validate.fail(
      "data.resolution",
      d.resolution,
      typed,
      f"{d.name} stores {size}x{size} clips; use {size} or build the "
      f"dataset at {d.resolution}",
    )
  if frames != d.num_frames + 1:
    validate.fail(
      "data.num_frames",
      d.num_frames,
      typed,
      f"{d.name} stores clips of {frames} frames; use {frames - 1}",
    )


@contextlib.contextmanager
def _quiet():
  """INFO records of the checks (jax's platforms, TFDS's dataset info)
  stay off the console: the run's own logs go to its workdir later."""
  loggers = [logging.getLogger(n) for n in ("absl", "jax._src.xla_bridge")]
  levels = [x.level for x in loggers]
  for x in loggers:
    x.setLevel(logging.WARNING)
  try:
    yield
  finally:
    for x, level in zip(loggers, levels):
      x.setLevel(level)


def check_run(config, workdir: str | None, typed: dict, train: bool) -> None:
  """Everything a run needs before it starts (train: data and workdir)."""
  validate.check_config(config, typed)
  weights = config.loss.perceptual_weights
  if weights and not pathlib.Path(weights).is_file():
    validate.fail("loss.perceptual_weights", weights, typed, "no such file")
  with _quiet():
    num_devices = check_devices(config, typed)
    if train:
      check_workdir(workdir, config, typed)
      check_data(config, typed, num_devices)
