"""orbax checkpoints: train state + data-iterator state + config.

Saves are atomic (orbax writes a temporary folder and renames it), so an
interrupted save never leaves a half checkpoint that a restart would load.
"""

import functools
import json
import pathlib

import jax
import orbax.checkpoint as ocp

from ii2v_jax.models import build


class CheckpointError(RuntimeError):
  """No usable checkpoint where one is required."""


def manager(workdir, *, max_to_keep: int = 10) -> ocp.CheckpointManager:
  path = pathlib.Path(workdir).absolute() / "checkpoints"
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  return ocp.CheckpointManager(
    path, options=options, item_names=("state", "data")
  )


def save(mngr, step: int, state: dict, data_state: dict) -> None:
  mngr.save(
    step,
    args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_state),
    ),
  )


def restore_latest(mngr, abstract_state: dict):
  """(state, data_state) of the newest checkpoint, or None for a new run."""
  step = mngr.latest_step()
  if step is None:
    return None
  out = mngr.restore(
    step,
    args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state),
      data=ocp.args.JsonRestore(),
    ),
  )
  return out["state"], out["data"]


def restore_params(workdir, abstract_params: dict, *, step: int | None = None):
  """Generator params alone (for sampling and evaluation); (params, step)."""
  path = pathlib.Path(workdir).absolute() / "checkpoints"
  if not path.is_dir():
    raise CheckpointError(f"no checkpoints in {workdir}")
  mngr = ocp.CheckpointManager(path, item_names=("state", "data"))
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise CheckpointError(f"no checkpoints in {workdir}")
  abstract = {"params": abstract_params}
  # Sampling and evaluation place params themselves: restore onto one
  # device instead of the training run's saved layout.
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  restore_args = jax.tree.map(
    lambda _: ocp.ArrayRestoreArgs(sharding=device), abstract
  )
  restored = mngr.restore(
    step,
    args=ocp.args.Composite(
      state=ocp.args.PyTreeRestore(
        item=abstract, restore_args=restore_args, partial_restore=True
      )
    ),
  )
  return restored["state"]["params"], step


def write_config(workdir, config) -> None:
  """Stores the resolved config beside the checkpoints (host 0)."""
  path = pathlib.Path(workdir) / "config.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".json.tmp")
  tmp.write_text(config.to_json_best_effort(indent=2))
  tmp.replace(path)


def _flat(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f"{prefix}{k}."))
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
  old = _flat(json.loads(path.read_text()))
  new = _flat(json.loads(config.to_json_best_effort()))
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
  return ml_collections.ConfigDict(json.loads(path.read_text()))


@functools.lru_cache(maxsize=4)
def load_model(workdir: str):
  """(config, graphdef, params, step) of the newest checkpoint in workdir."""
  config = read_config(workdir)
  graphdef, abstract = build.abstract_generator(config)
  params, step = restore_params(workdir, abstract)
  return config, graphdef, params, step
