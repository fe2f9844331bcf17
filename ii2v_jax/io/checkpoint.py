"""orbax checkpoints: train state + data-iterator state + config.

Saves are atomic (orbax writes a temporary folder and renames it), so an
interrupted save never leaves a half checkpoint that a restart would load.
Each step also holds a checksum per array (`integrity`); restoring checks
them and skips a damaged step with a warning naming it, falling back to the
newest intact one. Steps saved before checksums existed still load (with a
warning that they cannot be verified).
"""

import functools
import json
import logging
import pathlib
import shutil
import sys

import jax
import orbax.checkpoint as ocp

from ii2v_jax.io import integrity
from ii2v_jax.models import build

ITEMS = ("state", "data", integrity.ITEM)
DAMAGED_DIR = "checkpoints_damaged"  # Beside checkpoints/, in the workdir.

_log = logging.getLogger(__name__)
_warned_unverified: set[str] = set()


class CheckpointError(RuntimeError):
  """No usable checkpoint where one is required."""


class _Damaged(Exception):
  """One step cannot be used; the message says why."""


def manager(workdir, *, max_to_keep: int = 10) -> ocp.CheckpointManager:
  """The training run's manager (creates the folder; clears stale temps)."""
  path = pathlib.Path(workdir).absolute() / "checkpoints"
  options = ocp.CheckpointManagerOptions(
    max_to_keep=max_to_keep, create=True, cleanup_tmp_directories=True
  )
  return ocp.CheckpointManager(path, options=options, item_names=ITEMS)


def save(mngr, step: int, state: dict, data_state: dict) -> None:
  """Saves (asynchronously) the state, the iterator state and checksums."""
  mngr.save(
    step,
    args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_state),
      **{integrity.ITEM: ocp.args.JsonSave(integrity.checksums(state))},
    ),
  )


def _first_line(e: Exception) -> str:
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__


def _step_metadata(step_dir: pathlib.Path) -> dict:
  """orbax's record of the step and its items; raises _Damaged.

  orbax itself only logs a garbled one and restores anyway.
  """
  path = step_dir / "_CHECKPOINT_METADATA"
  if not path.is_file():
    raise _Damaged("its _CHECKPOINT_METADATA is missing")
  try:
    meta = json.loads(path.read_text())
  except (OSError, ValueError) as e:
    why = _first_line(e)
    raise _Damaged(f"its _CHECKPOINT_METADATA is unreadable ({why})") from e
  if not isinstance(meta, dict):
    raise _Damaged("its _CHECKPOINT_METADATA is not a JSON object")
  return meta


def _has_checksums(step_dir: pathlib.Path, meta: dict) -> bool:
  """True if the step holds checksums, False for a step saved before them.

  Raises _Damaged when they are missing from a step that had them.
  """
  if (step_dir / integrity.ITEM).is_dir():
    return True
  handlers = meta.get("item_handlers")
  if not isinstance(handlers, dict):
    raise _Damaged("no checksums, and its metadata names no items")
  legacy = integrity.ITEM not in handlers and "state" in handlers
  if not legacy:
    raise _Damaged("its checksums are missing")
  return False


def _quiet_closed_loop_callbacks() -> None:
  """Drops the 'Event loop is closed' errors of a failed orbax restore.

  When tensorstore fails to read a damaged file, its pending callbacks
  reach orbax's event loop after the loop is closed, and each one prints a
  traceback (as an unraisable exception) long after the error was handled.
  Other unraisable exceptions go to the previous hook.
  """
  previous = sys.unraisablehook
  if getattr(previous, "_ii2v_quiet", False):
    return

  def hook(unraisable):
    e = unraisable.exc_value
    if isinstance(e, RuntimeError) and str(e) == "Event loop is closed":
      return
    previous(unraisable)

  hook._ii2v_quiet = True
  sys.unraisablehook = hook


def _restore_step(mngr, step: int, items: dict) -> dict:
  """The step's items, checked against its checksums; raises _Damaged."""
  step_dir = pathlib.Path(mngr.directory) / str(step)
  if not step_dir.is_dir() or not any(step_dir.iterdir()):
    raise _Damaged("its folder is empty")
  if not (step_dir / "state").is_dir():
    raise _Damaged("its state/ folder is missing")
  verified = _has_checksums(step_dir, _step_metadata(step_dir))
  if verified:
    items = dict(items, **{integrity.ITEM: ocp.args.JsonRestore()})
  try:
    out = mngr.restore(step, args=ocp.args.Composite(**items))
  except Exception as e:  # orbax/tensorstore raise many kinds on bad files.
    _quiet_closed_loop_callbacks()
    raise _Damaged(f"it cannot be read ({_first_line(e)})") from e
  if verified:
    table = out[integrity.ITEM]
    if not isinstance(table, dict):
      raise _Damaged("its checksums are unreadable")
    bad = integrity.mismatches(table, out["state"])
    if bad:
      raise _Damaged("; ".join(bad))
  else:
    where = str(step_dir.parent)
    if where not in _warned_unverified:
      _warned_unverified.add(where)
      _log.warning(
        "checkpoints in %s were saved without checksums (before this "
        "version): they load, but cannot be verified",
        where,
      )
  return out


def _newest_intact(mngr, items: dict, steps) -> tuple[int, dict, list]:
  """(step, restored items, damaged newer steps) of the newest usable step.

  Raises CheckpointError naming the damaged steps when none is intact.
  """
  damaged = []
  for step in sorted(steps, reverse=True):
    try:
      return step, _restore_step(mngr, step, items), damaged
    except _Damaged as e:
      _log.warning(
        "checkpoint step %d in %s is damaged (%s); skipped",
        step,
        mngr.directory,
        e,
      )
      damaged.append(step)
  raise CheckpointError(
    f"no intact checkpoint in {mngr.directory} (damaged: "
    f"{', '.join(map(str, damaged))}); move that folder away (or use a new "
    "--workdir) to start afresh"
  )


def _set_aside(mngr, steps) -> None:
  """Moves damaged steps out of the run (kept, not deleted) so new saves
  never land on or beside them."""
  root = pathlib.Path(mngr.directory)
  if jax.process_index() == 0:
    dest = root.parent / DAMAGED_DIR
    dest.mkdir(exist_ok=True)
    for step in steps:
      target, n = dest / str(step), 0
      while target.exists():
        n += 1
        target = dest / f"{step}.{n}"
      shutil.move(str(root / str(step)), str(target))
      _log.warning("moved damaged checkpoint step %d to %s", step, target)
  mngr.reload()


def restore_latest(mngr, abstract_state: dict):
  """(state, data_state) of the newest intact checkpoint; None for a new run.

  Damaged newer steps are moved to `<workdir>/checkpoints_damaged/` so that
  training continues from the intact one without building on them. Raises
  CheckpointError when there are steps but none is intact.
  """
  steps = mngr.all_steps()
  if not steps:
    return None
  items = {
    "state": ocp.args.StandardRestore(abstract_state),
    "data": ocp.args.JsonRestore(),
  }
  _, out, damaged = _newest_intact(mngr, items, steps)
  if damaged:
    _set_aside(mngr, damaged)
  return out["state"], out["data"]


def restore_params(workdir, abstract_params: dict, *, step: int | None = None):
  """Generator params alone (for sampling and evaluation); (params, step).

  Reads the newest intact step (or exactly `step`); changes nothing on
  disk. Raises CheckpointError when there is none.
  """
  path = pathlib.Path(workdir).absolute() / "checkpoints"
  if not path.is_dir():
    raise CheckpointError(f"no checkpoints in {workdir}")
  mngr = ocp.CheckpointManager(path, item_names=ITEMS)
  steps = mngr.all_steps()
  if not steps:
    raise CheckpointError(f"no checkpoints in {workdir}")
  if step is not None:
    if step not in steps:
      raise CheckpointError(
        f"no checkpoint at step {step} in {workdir} (there are: "
        f"{', '.join(map(str, sorted(steps)))})"
      )
    steps = [step]
  abstract = {"params": abstract_params}
  # Sampling and evaluation place params themselves: restore onto one
  # device instead of the training run's saved layout.
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  restore_args = jax.tree.map(
    lambda _: ocp.ArrayRestoreArgs(sharding=device), abstract
  )
  items = {
    "state": ocp.args.PyTreeRestore(
      item=abstract, restore_args=restore_args, partial_restore=True
    )
  }
  step, out, _ = _newest_intact(mngr, items, steps)
  return out["state"]["params"], step


def write_config(workdir, config) -> None:
  """Stores the resolved config beside the checkpoints (host 0)."""
  path = pathlib.Path(workdir) / "config.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".json.tmp")
  tmp.write_text(config.to_json_best_effort(indent=2))
  tmp.replace(path)


def flat_keys(d: dict, prefix: str = "") -> dict:
  """Nested dict -> {"a.b.c": value}."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flat_keys(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def config_changes(workdir, config) -> list[str]:
  """Keys whose value differs from the config of the workdir's last run.

  Raises CheckpointError when a changed key alters the model's shapes, since
  the checkpoint could not be restored into it.
  """
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    return []
  old = flat_keys(json.loads(path.read_text()))
  new = flat_keys(json.loads(config.to_json_best_effort()))
  changed = sorted(
    k for k in old.keys() | new.keys() if old.get(k) != new.get(k)
  )
  fatal = [
    k for k in changed if k.startswith("model.") or k == "data.resolution"
  ]
  if fatal:
    raise CheckpointError(
      f"{workdir} was trained with a different {', '.join(fatal)}; "
      "use a new --workdir"
    )
  return changed


def read_config(workdir):
  """The config a workdir was trained with, as a ConfigDict."""
  import ml_collections

  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    raise CheckpointError(f"{workdir} holds no config.json")
  try:
    tree = json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise CheckpointError(f"{path} is not a readable config: {e}") from None
  if not isinstance(tree, dict):
    raise CheckpointError(
      f"{path} holds a JSON {type(tree).__name__}, not a config"
    )
  return ml_collections.ConfigDict(tree)


@functools.lru_cache(maxsize=4)
def load_model(workdir: str):
  """(config, graphdef, params, step) of the newest checkpoint in workdir."""
  config = read_config(workdir)
  graphdef, abstract = build.abstract_generator(config)
  params, step = restore_params(workdir, abstract)
  return config, graphdef, params, step
