"""Converting the original PyTorch checkpoints (REFERENCE.md §5).

  python -m ii2v_jax.convert --torch_checkpoint reg_ckpt_checkpoint_<it>.pt
      --workdir DIR [--config configs/iper.py[:128]] [--step N] [--force]
  python -m ii2v_jax.convert --torchvision_vgg19 vgg19-dcbb9e9d.pth
      --out vgg19.npz

The first writes a workdir that sampling and evaluation load and training
resumes from (step = the iteration in the file name). The second converts
torchvision's ImageNet VGG19 for the perceptual loss. Reading `.pt` files
needs PyTorch (optional); an `.npz` export of the state_dict works without.

The tensor mapping itself (names, permutes, shape checks) is
`torch_checkpoint.convert_tree`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import optax

from ii2v_jax.convert import staging
from ii2v_jax.convert import torch_checkpoint as tc
from ii2v_jax.convert.checkpoint_config import (
  DEFAULT_CONFIG,
  config_for_checkpoint,
  discriminator_widths,
  generator_dims,
  load_config,
)
from ii2v_jax.convert.torch_checkpoint import (
  BIAS,
  CONV2D,
  ConversionError,
  convert_tree,
  spectral_rule,
)
from ii2v_jax.io import checkpoint
from ii2v_jax.models import build, generator
from ii2v_jax.pretrained import perceptual
from ii2v_jax.training import optim, state

# --- the generator ---------------------------------------------------------


def convert_generator(state_dict: dict, abstract_params: dict) -> dict:
  """Generator params (float32 jax arrays) from a torch state_dict.

  Args:
    state_dict: {torch name: array} of `SkipSequenceModel` (64 tensors at
      S=64, 82 at S=128), `module.` already stripped.
    abstract_params: from `build.abstract_generator(config)` (or
      `build.split_generator`); leaves need `.shape` and `.dtype`.

  Raises:
    ConversionError: on a resolution mismatch, or naming each missing,
      unexpected or wrongly-shaped tensor.
  """
  dims = generator_dims(state_dict)
  n_ours = len(abstract_params["shape_enc"]["blocks"])
  ours = generator.BOTTLENECK_SIZE * 2**n_ours
  if dims.resolution != ours:
    raise ConversionError(
      f"the checkpoint is a {dims.resolution}px model, the params are for "
      f"{ours}px (use a config with data.resolution={dims.resolution})"
    )
  return jax.tree.map(jnp.asarray, convert_tree(state_dict, abstract_params))


# --- the discriminators (REFERENCE.md §5.3) ----------------------------------


def convert_patch_discriminator(state_dict: dict, abstract_params: dict):
  """Patch-D params from `disc_patch_checkpoint_<it>.pt` (10 tensors).

  `abstract_params`: `build.abstract_discriminators(config)[1]["disc"]
  ["patch"]`. Raises ConversionError naming each bad tensor.
  """
  return jax.tree.map(jnp.asarray, convert_tree(state_dict, abstract_params))


def convert_temporal_discriminator(
  state_dict: dict, abstract_params: dict, abstract_stats: dict
) -> tuple[dict, dict]:
  """(params, spectral state) of the temporal D (132 tensors).

  Abstract trees from `build.abstract_discriminators(config)[1]`: `["disc"]
  ["temporal"]` and `["disc_stats"]["temporal"]`. `weight_orig` becomes
  the kernel, `weight_u`/`weight_v` the stored power-iteration vectors, so
  eval-mode outputs (update_stats=False) equal torch's eval mode.
  """
  both = {"params": abstract_params, "stats": abstract_stats}
  rule = lambda path, shape: spectral_rule(path[1:], shape)
  out = jax.tree.map(jnp.asarray, convert_tree(state_dict, both, rule))
  return out["params"], out["stats"]


def discriminator_state(config, patch_sd=None, temporal_sd=None) -> dict:
  """{"disc", "disc_stats"} for the train state; {} without `gan.enabled`.

  Converted where a state_dict is given; otherwise freshly initialised, as
  training would (slow on CPU: orthogonal inits of every SN conv).
  """
  _, abstract = build.abstract_discriminators(config)
  if not abstract:
    return {}
  disc, stats = {}, {}
  if patch_sd is not None:
    disc["patch"] = convert_patch_discriminator(
      patch_sd, abstract["disc"]["patch"]
    )
    stats["patch"] = jax.tree.map(
      jnp.zeros_like, abstract["disc_stats"]["patch"]
    )
  if temporal_sd is not None:
    disc["temporal"], stats["temporal"] = convert_temporal_discriminator(
      temporal_sd,
      abstract["disc"]["temporal"],
      abstract["disc_stats"]["temporal"],
    )
  if len(disc) < len(abstract["disc"]):
    fresh = build.initial_disc_state(config)
    for name in abstract["disc"]:
      disc.setdefault(name, fresh["disc"][name])
      stats.setdefault(name, fresh["disc_stats"][name])
  return {"disc": disc, "disc_stats": stats}


# --- the train state ---------------------------------------------------------


def _schedule_counts(opt_state: dict, step: int, gan_start: int) -> dict:
  """Sets each learning-rate schedule's counter as training would have.

  Adam's own counter stays 0, matching its fresh (zero) moments. The
  generator schedules count iterations; the discriminators' count their
  updates, which start at `gan_start` (1-based).
  """
  is_sched = lambda x: isinstance(x, optax.ScaleByScheduleState)
  out = {}
  for name, st in opt_state.items():
    n = max(0, step - gan_start + 1) if name.startswith("disc") else step
    out[name] = jax.tree.map(
      lambda x, n=n: (
        x._replace(count=jnp.asarray(n, x.count.dtype)) if is_sched(x) else x
      ),
      st,
      is_leaf=is_sched,
    )
  return out


def _same_structure(got, want) -> bool:
  spec = lambda t: jax.tree.map(lambda x: (tuple(x.shape), x.dtype), t)
  return jax.tree.structure(got) == jax.tree.structure(want) and spec(
    got
  ) == spec(want)


def build_train_state(
  config, params: dict, step: int, disc_state: dict | None = None
) -> dict:
  """The train state `train.py` resumes from, around converted params.

  Fresh Adam moments; `step` and the schedules' counters at `step`.
  """
  gan = config.get("gan")
  # The schedules are functions of the step, not state, so steps_per_epoch
  # does not change what is saved; training rebuilds them from its data.
  optimizers, _ = optim.make_optimizers(config.optim, 1, gan)
  if disc_state is None:
    disc_state = discriminator_state(config)
  st = state.init_state(params, optimizers, disc_state)
  st["step"] = jnp.asarray(step, jnp.int32)
  start = gan.start_iteration if gan is not None else 1
  st["opt"] = _schedule_counts(st["opt"], step, start)
  want = state.abstract_state(config, optimizers)[-1]
  if not _same_structure(st, want):
    raise ConversionError(
      "the converted train state does not match state.abstract_state "
      "(has the train state changed? update convert.build_train_state)"
    )
  return st


def convert_to_workdir(
  state_dict: dict,
  workdir,
  config,
  *,
  step: int = 0,
  force: bool = False,
  source: str = "",
  config_spec: str = DEFAULT_CONFIG,
  disc_patch: dict | None = None,
  disc_temporal: dict | None = None,
) -> dict:
  """Writes `config.json` and an orbax checkpoint at `step` into workdir.

  `disc_patch`/`disc_temporal` are the discriminators' state_dicts; without
  them (and with `gan.enabled`) the discriminators start fresh. Everything
  is converted and checked first, then written beside the workdir and
  swapped in only when it restores (`staging`): with `force` an existing
  run is replaced whole, and any error leaves it as it was. Returns a
  summary dict (also written as `conversion.json`).
  """
  workdir = staging.check_target(workdir, force=force)
  config, changed = config_for_checkpoint(
    config, state_dict, config_spec=config_spec
  )
  config, disc_changed = discriminator_widths(config, disc_patch, disc_temporal)
  changed.update(disc_changed)
  _, abstract = build.abstract_generator(config)
  params = convert_generator(state_dict, abstract)
  discs = discriminator_state(config, disc_patch, disc_temporal)
  train_state = build_train_state(config, params, step, discs)
  summary = {
    "source": source,
    "step": step,
    "tensors": len(state_dict),
    "params": build.count_params(params),
    "resolution": config.data.resolution,
    "discriminators": {
      "patch": "converted" if disc_patch is not None else "fresh",
      "temporal": "converted" if disc_temporal is not None else "fresh",
    }
    if discs
    else "disabled (gan.enabled is off)",
    "changed_config": {k: list(v) for k, v in changed.items()},
  }
  with staging.staged(workdir) as stage:
    checkpoint.write_config(stage, config)
    mngr = checkpoint.manager(stage)
    # No data-iterator state: training starts its iterator afresh (None).
    checkpoint.save(mngr, step, train_state, None)
    mngr.wait_until_finished()
    mngr.close()
    # Only a run that reads back (checksums included) replaces the old one.
    checkpoint.restore_params(stage, abstract, step=step)
    (stage / "conversion.json").write_text(json.dumps(summary, indent=2))
  return summary


# --- VGG19 -----------------------------------------------------------------


def convert_torchvision_vgg(state_dict: dict, net: str = "vgg19") -> dict:
  """Perceptual-loss params from torchvision `vgg19().state_dict()`.

  `features.N.weight/bias` are read; the `classifier.*` head is ignored.
  """
  index = perceptual.torchvision_conv_indices(net)

  def rule(path, shape):
    conv, leaf = path
    r = CONV2D if leaf == "kernel" else BIAS
    return f"features.{index[conv]}.{r.torch_leaf}", r

  out = convert_tree(
    state_dict,
    perceptual.abstract_vgg_params(net),
    rule,
    ignore=lambda name: name.startswith("classifier."),
  )
  return out


# --- CLI -------------------------------------------------------------------


class _OneLineParser(argparse.ArgumentParser):
  """argparse whose usage errors are one line (no usage block), exit 2."""

  def error(self, message):
    self.exit(2, f"error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
  p = _OneLineParser(
    prog="python -m ii2v_jax.convert",
    description=__doc__.splitlines()[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument(
    "--torch_checkpoint",
    help="generator .pt (raw state_dict or ignite reg_ckpt_checkpoint_<it>"
    ".pt) or an .npz export of it",
  )
  p.add_argument("--workdir", help="where the converted run is written")
  p.add_argument(
    "--config",
    default=DEFAULT_CONFIG,
    help=f"config file[:ARG] (default {DEFAULT_CONFIG}; :128 for 128 px)",
  )
  p.add_argument(
    "--step",
    type=int,
    default=None,
    help="checkpoint step (default: the iteration in the file name, else 0)",
  )
  p.add_argument(
    "--force",
    action="store_true",
    help="replace an existing run in --workdir (only once the new one is "
    "complete)",
  )
  p.add_argument(
    "--disc_patch_checkpoint",
    help="disc_patch_checkpoint_<it>.pt (default: that file beside the "
    "generator's, if there); without it the patch D starts fresh",
  )
  p.add_argument(
    "--disc_temporal_checkpoint",
    help="disc_temp_checkpoint_<it>.pt (default: as --disc_patch_checkpoint)",
  )
  p.add_argument(
    "--torchvision_vgg19", help="torchvision vgg19-*.pth (or .npz export)"
  )
  p.add_argument("--out", help="the .npz that --torchvision_vgg19 writes")
  return p


def _run(args, p) -> str:
  if args.torchvision_vgg19:
    if not args.out:
      p.error("--torchvision_vgg19 needs --out FILE.npz")
    sd = tc.load_state_dict(args.torchvision_vgg19)
    perceptual.save_vgg_params(convert_torchvision_vgg(sd), args.out)
    return f"wrote VGG19 perceptual weights to {args.out}"
  if not args.torch_checkpoint or not args.workdir:
    p.error("give --torch_checkpoint and --workdir (or --torchvision_vgg19)")
  if args.step is not None and args.step < 0:
    p.error(f"--step must be >= 0, got {args.step}")
  sd = tc.load_state_dict(args.torch_checkpoint)
  it = tc.iteration_from_filename(args.torch_checkpoint)
  step = args.step if args.step is not None else it or 0
  discs = {}
  for kind, flag in (("patch", "disc_patch"), ("temp", "disc_temporal")):
    path = getattr(args, f"{flag}_checkpoint")
    gen = pathlib.Path(args.torch_checkpoint)
    sibling = gen.with_name(f"disc_{kind}_checkpoint_{it}{gen.suffix}")
    if path is None and it is not None and sibling.is_file():
      path = sibling
    discs[flag] = tc.load_state_dict(path) if path else None
  summary = convert_to_workdir(
    sd,
    args.workdir,
    load_config(args.config),
    step=step,
    force=args.force,
    source=str(args.torch_checkpoint),
    config_spec=args.config,
    **discs,
  )
  lines = [
    f"converted {summary['tensors']} tensors ({summary['params']:,} params, "
    f"{summary['resolution']}px) to {args.workdir} at step {step}",
    f"  discriminators: {summary['discriminators']}",
  ]
  for key, (old, new) in summary["changed_config"].items():
    lines.append(f"  {key}: {old} -> {new} (to match the checkpoint)")
  return "\n".join(lines)


def main(argv=None) -> int:
  p = _parser()
  args = p.parse_args(argv)
  try:
    print(_run(args, p))
  except (ConversionError, tc.TorchCheckpointError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except OSError as e:  # An unwritable --workdir/--out, a full disk.
    print(f"error: cannot write the result: {e}", file=sys.stderr)
    return 2
  return 0
