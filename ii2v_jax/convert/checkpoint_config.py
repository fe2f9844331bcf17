"""The config an original PyTorch generator checkpoint needs (REFERENCE.md §5).

Widths come from the checkpoint's tensor shapes; the decoder settings are
the original's, whatever the config asked for. Also: loading the --config
file a conversion starts from.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib

import numpy as np

from ii2v_jax.convert.torch_checkpoint import ConversionError
from ii2v_jax.models import generator

DEFAULT_CONFIG = "configs/iper.py"
# The original decoder: tanh pixels. A converted checkpoint keeps the
# reference semantics even under a config that turns a deviation on.
REFERENCE_DECODER = {"colour_stats": False, "output_head": "pixels"}


@dataclasses.dataclass(frozen=True)
class GeneratorDims:
  """What a torch generator's shapes say about its config."""

  resolution: int
  channels: int
  poke_channels: int
  shape_widths: tuple[int, ...]
  poke_widths: tuple[int, ...]


def state_dict_shape(
  state_dict: dict, name: str, what: str = "generator"
) -> tuple:
  if name not in state_dict:
    keys = ", ".join(sorted(state_dict)[:12])
    raise ConversionError(
      f"not an II2V {what} state_dict: no {name!r} (keys: {keys}, ...)"
    )
  return tuple(np.shape(state_dict[name]))


def generator_dims(state_dict: dict) -> GeneratorDims:
  """Resolution and widths of a torch `SkipSequenceModel` state_dict."""

  def widths(prefix):
    out = []
    while f"{prefix}.{len(out)}.conv.weight" in state_dict:
      out.append(
        state_dict_shape(state_dict, f"{prefix}.{len(out)}.conv.weight")[0]
      )
    return tuple(out)

  shape_w, poke_w = widths("shape_enc.blocks"), widths("dynamics_enc.model")
  bottleneck = state_dict_shape(
    state_dict, "shape_enc.bottleneck.conv1.conv.weight"
  )
  if not shape_w or not poke_w:
    state_dict_shape(state_dict, "shape_enc.blocks.0.conv.weight")
    state_dict_shape(state_dict, "dynamics_enc.model.0.conv.weight")
  return GeneratorDims(
    resolution=generator.BOTTLENECK_SIZE * 2 ** len(shape_w),
    channels=bottleneck[0],
    poke_channels=poke_w[0],
    shape_widths=shape_w,
    poke_widths=poke_w,
  )


def _min_channels(dims: GeneratorDims, current: int) -> int:
  """A `model.min_channels` giving the checkpoint's shape widths."""
  first = dims.shape_widths[0]
  floor = dims.channels // 2 ** len(dims.shape_widths)
  # Any bound <= C / 2**n gives the same widths: keep the config's if so.
  return current if first == floor and current <= floor else first


def config_for_checkpoint(
  config, state_dict: dict, *, config_spec: str = DEFAULT_CONFIG
):
  """(config with the checkpoint's widths, {key: (old, new)} changed).

  The resolution is checked, not changed: it is a data setting too. Widths
  (`model.channels`, `poke_channels`, `min_channels`) follow the checkpoint,
  so a narrow torch model converts to a narrow config; the decoder is the
  original's (`REFERENCE_DECODER`, and no flow loss). `config_spec` (the
  `--config` value) only words the hint of a resolution mismatch.
  """
  dims = generator_dims(state_dict)
  res = config.data.resolution
  if dims.resolution != res:
    raise ConversionError(
      f"the checkpoint is a {dims.resolution}x{dims.resolution} model "
      f"({len(dims.shape_widths)} shape_enc.blocks) but the config has "
      f"data.resolution={res}; use a {dims.resolution}px config, e.g. "
      f"--config {config_spec.partition(':')[0]}:{dims.resolution}"
    )
  m = config.model
  new = {
    "channels": dims.channels,
    "poke_channels": dims.poke_channels,
    "min_channels": _min_channels(dims, m.min_channels),
    **REFERENCE_DECODER,
  }
  old = {k: m.get(k, REFERENCE_DECODER.get(k)) for k in new}
  changed = {f"model.{k}": (old[k], v) for k, v in new.items() if old[k] != v}
  config = config.copy_and_resolve_references()
  config.unlock()
  config.model.update(new)
  # The flow loss belongs to the warp head, which the original lacks.
  if config.loss.get("flow_weight", 0.0):
    changed["loss.flow_weight"] = (config.loss.flow_weight, 0.0)
    config.loss.flow_weight = 0.0
  if config.data.get("flow_targets", False):
    changed["data.flow_targets"] = (True, False)
    config.data.flow_targets = False
  got = (
    tuple(generator.shape_widths(res, dims.channels, new["min_channels"])),
    tuple(generator.poke_widths(res, dims.channels, dims.poke_channels)),
  )
  if got != (dims.shape_widths, dims.poke_widths):
    raise ConversionError(
      f"encoder widths {dims.shape_widths} (shape_enc) and "
      f"{dims.poke_widths} (dynamics_enc) do not follow the reference width "
      "rules (REFERENCE.md §4.2; the original's `layers` option is not "
      "supported)"
    )
  return config, changed


def load_config(spec: str):
  """A config file with an optional `:ARG`, as `--config` in launch.py."""
  path, _, arg = spec.partition(":")
  if not pathlib.Path(path).is_file():
    raise ConversionError(f"config file not found: {path}")
  module_spec = importlib.util.spec_from_file_location("_ii2v_config", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
    return module.get_config(arg or None)
  except Exception as e:  # A broken or foreign config file.
    raise ConversionError(f"--config {spec}: cannot load it ({e})") from e


def discriminator_widths(config, patch_sd, temporal_sd):
  """Config with `gan.patch_ndf`/`gan.temporal_width` read from the D
  state_dicts that are given; (config, changed)."""
  new = {}
  if patch_sd is not None:
    shape = state_dict_shape(patch_sd, "in_conv.weight", "patch D")
    new["patch_ndf"] = shape[0]
  if temporal_sd is not None:
    new["temporal_width"] = state_dict_shape(
      temporal_sd, "conv1.weight_orig", "temporal D"
    )[0]
  if not new or not config.get("gan") or not config.gan.enabled:
    return config, {}
  g = config.gan
  changed = {f"gan.{k}": (g[k], v) for k, v in new.items() if g[k] != v}
  config = config.copy_and_resolve_references()
  config.unlock()
  config.gan.update(new)
  return config, changed
