"""RAFT weights as numpy arrays: torch names, formats, checks, .npz files.

Reads torch state dicts (torch only for .pth/.pt), detects the torchvision
and the original princeton-vl/RAFT key formats, maps torch names onto this
port's '/'-paths and back, checks a parameter tree against expected shapes
and reads/writes the converted .npz. numpy only: `flow.raft` builds on this
module, and `flow.raft_convert` (the CLI) on both.
"""

import pathlib
import re
import zipfile

import numpy as np

VARIANT_KEY = "__variant__"
_LAYER = re.compile(r"^layer\d$")
# Parent names of torchvision `Conv2dNormActivation`s (ours: `ConvNorm`).
_CONVNORM = {
  "convnormrelu", "convnormrelu1", "convnormrelu2", "convnormrelu3",
  "downsample", "convcorr1", "convcorr2", "convflow1", "convflow2",
  "convrelu",
}  # fmt: skip
_NORM_LEAVES = {
  "weight": "scale", "bias": "bias", "running_mean": "mean",
  "running_var": "var",
}  # fmt: skip
_NORM_LEAVES_INV = {v: k for k, v in _NORM_LEAVES.items()}


class ConversionError(ValueError):
  """A checkpoint does not fit the RAFT parameter tree."""


# ---------------------------------------------------------------- reading


def load_torch_state_dict(path) -> dict[str, np.ndarray]:
  """Reads a torch state dict from .pth/.pt (needs torch) or .npz.

  Returns:
    Torch key -> float32 numpy array (e.g. `module.fnet.conv1.weight`).
  """
  path = pathlib.Path(path)
  if path.suffix == ".npz":
    return {k: v for k, v in _read_npz_arrays(path).items()}
  try:
    import torch  # noqa: PLC0415  (optional dependency)
  except ImportError:
    raise ImportError(
      f"reading {path.name} needs torch (pip install torch), or convert an "
      ".npz export of the state dict instead"
    ) from None
  try:
    sd = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # torch raises many types for bad files
    raise ConversionError(f"{path} is not a readable torch file: {e}") from e
  for key in ("state_dict", "model"):
    if isinstance(sd, dict) and isinstance(sd.get(key), dict):
      sd = sd[key]
  if not isinstance(sd, dict):
    raise ConversionError(f"{path} holds a {type(sd).__name__}, not a dict")
  return {k: v.detach().float().numpy() for k, v in sd.items()}


def _read_npz_arrays(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    with np.load(path, allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  except FileNotFoundError:
    raise
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    raise ConversionError(f"{path} is not a readable .npz file: {e}") from e


# ---------------------------------------------------------------- formats


def strip_prefix(sd: dict) -> dict:
  """Drops DataParallel's `module.` prefix."""
  return {k.removeprefix("module."): v for k, v in sd.items()}


def detect_format(keys) -> str:
  """'torchvision' or 'official' from the (prefix-free) key names."""
  heads = {k.split(".")[0] for k in keys}
  if heads & {"feature_encoder", "context_encoder"}:
    return "torchvision"
  if heads & {"fnet", "cnet"}:
    return "official"
  raise ConversionError(
    "not a RAFT state dict: expected keys starting with feature_encoder. "
    f"(torchvision) or fnet. (original RAFT); found {sorted(heads)[:8]}"
  )


def detect_variant(keys, fmt: str) -> str:
  """'large' (convex upsampling mask) or 'small' (no mask)."""
  mask = "mask_predictor." if fmt == "torchvision" else "update_block.mask."
  return "large" if any(k.startswith(mask) for k in keys) else "small"


# (original template, torchvision template) pairs; {b} is a block such as
# "layer2.0", {i} a digit, {g} a GRU gate, {l} the leaf (weight, bias, ...).
_ENCODER_RULES = (
  ("conv1.{l}", "convnormrelu.0.{l}"),
  ("norm1.{l}", "convnormrelu.1.{l}"),
  ("conv2.{l}", "conv.{l}"),
  # The original registers the downsample norm twice: as norm3 (residual
  # blocks, large) or norm4 (bottleneck, small), and as downsample.1.
  ("{b}.norm{A}.{l}", "{b}.downsample.1.{l}"),
  ("{b}.conv{i}.{l}", "{b}.convnormrelu{i}.0.{l}"),
  ("{b}.norm{i}.{l}", "{b}.convnormrelu{i}.1.{l}"),
  ("{b}.downsample.{i}.{l}", "{b}.downsample.{i}.{l}"),
)
_UPDATE_RULES = (
  ("encoder.convc1.{l}", "motion_encoder.convcorr1.0.{l}"),
  ("encoder.convc2.{l}", "motion_encoder.convcorr2.0.{l}"),
  ("encoder.convf1.{l}", "motion_encoder.convflow1.0.{l}"),
  ("encoder.convf2.{l}", "motion_encoder.convflow2.0.{l}"),
  ("encoder.conv.{l}", "motion_encoder.conv.0.{l}"),
  ("flow_head.conv{i}.{l}", "flow_head.conv{i}.{l}"),
)
_FIELDS = {"b": r"layer\d\.\d", "i": r"\d", "g": "[zrq]", "l": r"\w+"}


def _rules(variant: str) -> list[tuple[str, str]]:
  """All (original, torchvision) key templates of one variant."""
  alias = "4" if variant == "small" else "3"
  rules = [
    (f"{o}.{r}".replace("{A}", alias), f"{t}.{v}")
    for o, t in (("fnet", "feature_encoder"), ("cnet", "context_encoder"))
    for r, v in _ENCODER_RULES
  ]
  rules += [
    (f"update_block.{r}", f"update_block.{v}") for r, v in _UPDATE_RULES
  ]
  tv_gru = "update_block.recurrent_block.convgru{i}.conv{g}.{l}"
  if variant == "large":  # SepConvGRU numbers its two gate sets
    rules += [("update_block.gru.conv{g}{i}.{l}", tv_gru)]
    rules += [("update_block.mask.0.{l}", "mask_predictor.convrelu.0.{l}")]
    rules += [("update_block.mask.2.{l}", "mask_predictor.conv.{l}")]
  else:
    rules += [("update_block.gru.conv{g}.{l}", tv_gru.replace("{i}", "1"))]
  return rules


def _match(template: str, key: str) -> dict | None:
  """Fields of `key` if it fits `template`, else None."""
  pattern = re.escape(template)
  for name, regex in _FIELDS.items():
    pattern = pattern.replace(re.escape(f"{{{name}}}"), f"(?P<{name}>{regex})")
  m = re.fullmatch(pattern, key)
  return None if m is None else m.groupdict()


def official_to_torchvision(sd: dict, variant: str) -> dict:
  """Renames an original-RAFT state dict (no `module.`) to torchvision's.

  Raises:
    ConversionError: unknown keys, or aliased norm copies that disagree.
  """
  rules, out, unknown = _rules(variant), {}, []
  for key, value in sd.items():
    tv = next(
      (t.format(**f) for o, t in rules if (f := _match(o, key)) is not None),
      None,
    )
    if tv is None:
      unknown.append(key)
    elif tv in out and not np.array_equal(out[tv], value):
      raise ConversionError(f"{key} disagrees with its alias {tv}")
    else:
      out[tv] = value
  if unknown:
    raise ConversionError(f"unknown original-RAFT keys: {_names(unknown)}")
  return out


def torchvision_to_official(sd: dict, variant: str) -> dict:
  """Inverse of `official_to_torchvision` (aliased norms written twice).

  Used by tests and the parity tool to build original-layout files.
  """
  rules, out = _rules(variant), {}
  for key, value in sd.items():
    names = [
      o.format(**f) for o, t in rules if (f := _match(t, key)) is not None
    ]
    if not names:
      raise ConversionError(f"no original-RAFT name for {key}")
    out.update(dict.fromkeys(names, value))
  return out


# ---------------------------------------------------- torchvision <-> ours


def _torchvision_key_to_path(key: str) -> str | None:
  """torchvision key -> our '/'-path; None for buffers we do not keep."""
  *mods, leaf = key.split(".")
  out = []
  for i, part in enumerate(mods):
    if part.isdigit() and not (i and _LAYER.match(mods[i - 1])):
      part = {"0": "conv", "1": "norm"}.get(part, f"<{part}>")
    out.append(part)
  if out[-1] == "norm":
    if leaf == "num_batches_tracked":
      return None
    leaf = _NORM_LEAVES.get(leaf, f"<{leaf}>")
  else:
    leaf = {"weight": "kernel", "bias": "bias"}.get(leaf, f"<{leaf}>")
  return "/".join(out + [leaf])


def path_to_torchvision_key(path: str) -> str:
  """Our '/'-path -> torchvision key (inverse of the rule above)."""
  *mods, leaf = path.split("/")
  out = []
  for i, part in enumerate(mods):
    parent = mods[i - 1] if i else ""
    grand = mods[i - 2] if i > 1 else ""
    in_convnorm = parent in _CONVNORM or (
      parent == "conv" and grand == "motion_encoder"
    )
    if part in ("conv", "norm") and in_convnorm and i == len(mods) - 1:
      part = "0" if part == "conv" else "1"
    out.append(part)
  if mods[-1] == "norm":
    leaf = _NORM_LEAVES_INV[leaf]
  else:
    leaf = {"kernel": "weight", "bias": "bias"}[leaf]
  return ".".join(out + [leaf])


def torchvision_to_params(sd: dict) -> tuple[dict, dict]:
  """torchvision state dict -> (our '/'-path -> array, path -> torch key).

  Conv weights (O, I, kh, kw) become kernels (kh, kw, I, O).
  """
  params, sources = {}, {}
  for key, value in sd.items():
    path = _torchvision_key_to_path(key)
    if path is None:
      continue
    value = np.asarray(value, np.float32)
    if path.endswith("/kernel") and value.ndim == 4:
      value = value.transpose(2, 3, 1, 0)
    params[path], sources[path] = value, key
  return params, sources


def params_to_torchvision(params: dict) -> dict:
  """Inverse of `torchvision_to_params` (without num_batches_tracked)."""
  out = {}
  for path, value in params.items():
    value = np.asarray(value)
    if path.endswith("/kernel"):
      value = value.transpose(3, 2, 0, 1)
    out[path_to_torchvision_key(path)] = value
  return out


# ------------------------------------------------------------ the checks


def _names(names, limit: int = 12) -> str:
  names = sorted(names)
  more = f" … (+{len(names) - limit} more)" if len(names) > limit else ""
  return ", ".join(names[:limit]) + more


def check_params(
  params: dict, expected: dict, source: str, sources: dict | None = None
) -> None:
  """Raises ConversionError naming missing, unexpected, misshapen arrays.

  Args:
    params: '/'-path -> array.
    expected: '/'-path -> shape (`flow.raft.param_shapes`).
    source: file name for the message.
    sources: '/'-path -> original key, to name keys as the file does.
  """
  name = lambda p: f"{sources[p]} (-> {p})" if sources and p in sources else p
  problems = []
  missing = [
    f"{path_to_torchvision_key(p)} (-> {p})" for p in expected
    if p not in params
  ]  # fmt: skip
  extra = [name(p) for p in params if p not in expected]
  shapes = [
    f"{name(p)}: {tuple(v.shape)}, expected {expected[p]}"
    for p, v in params.items()
    if p in expected and tuple(v.shape) != tuple(expected[p])
  ]
  for label, items in (
    ("missing", missing), ("unexpected", extra), ("wrong shape", shapes),
  ):  # fmt: skip
    if items:
      problems.append(f"{len(items)} {label}: {_names(items)}")
  if problems:
    raise ConversionError(f"{source} does not fit RAFT: " + "; ".join(problems))


# ------------------------------------------------------------ .npz files


def write_npz(path, variant: str, params: dict) -> None:
  """Saves converted params; `read_npz` / `flow.raft.load_raft` read it."""
  arrays = {k: np.asarray(v, np.float32) for k, v in params.items()}
  np.savez(path, **arrays, **{VARIANT_KEY: np.array(variant)})


def read_npz(path) -> tuple[str, dict]:
  """(variant, params) from a `write_npz` file."""
  arrays = _read_npz_arrays(pathlib.Path(path))
  if VARIANT_KEY not in arrays:
    hint = ""
    try:
      detect_format(strip_prefix(arrays))
      hint = "; it holds torch names: run python -m flow.raft_convert first"
    except ConversionError:
      pass
    raise ConversionError(f"{path} is not a converted RAFT file{hint}")
  variant = str(arrays.pop(VARIANT_KEY))
  return variant, arrays
