"""PyTorch state_dicts: reading them, and mapping them onto our params.

PyTorch is optional: only reading `.pt`/`.pth` files needs it, and this
module imports nothing but numpy. A state_dict can also come as an `.npz`
of numpy arrays (read without pickle), so a machine without torch can
convert a file exported elsewhere with

  python -m ii2v_jax.convert.torch_checkpoint IN.pt OUT.npz

which needs torch and numpy only (no jax).

Our submodules are named after the torch prefixes, so mapping a state_dict
onto a params tree (`convert_tree`) is a rename plus a per-kind permute
(`LeafRule`, REFERENCE.md §5.4): Conv2d (O,I,kh,kw) and ConvTranspose2d
(I,O,kh,kw) both map to our kernels by (2, 3, 1, 0) (our transposed-conv
kernel is (kh,kw,O,I)); spectral-norm Conv3d `weight_orig` by
(2, 3, 4, 1, 0), with `weight_u`/`weight_v` kept as the SN state;
GroupNorm `weight` -> `scale`.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import sys
import zipfile
from collections.abc import Callable

import numpy as np

TORCH_PIN = "torch==2.13.0"
# Keys under which training checkpoints nest the model's state_dict (ignite
# `ModelCheckpoint` files hold `model` beside the optimizers).
_NESTED_KEYS = ("model", "state_dict")
_ITERATION = re.compile(r"checkpoint_(\d+)\.(pth?|npz)$")
_MAX_LISTED = 12


class TorchCheckpointError(ValueError):
  """A checkpoint is missing, unreadable or not a state_dict."""


class ConversionError(ValueError):
  """A state_dict does not fit the target params."""


def import_torch():
  """The torch module, or a one-line error saying how to install it."""
  try:
    import torch
  except ImportError:
    raise TorchCheckpointError(
      "reading PyTorch checkpoints needs PyTorch, which is optional: "
      f"`pip install {TORCH_PIN}` (a CPU build is enough), or export the "
      "state_dict to .npz elsewhere with "
      "`python -m ii2v_jax.convert.torch_checkpoint IN.pt OUT.npz`"
    ) from None
  return torch


def unwrap_state_dict(obj, path="<dict>") -> dict:
  """The model state_dict inside a loaded checkpoint, `module.` stripped.

  Args:
    obj: a raw state_dict, or a dict holding one under `model` (ignite
      checkpoints) or `state_dict`.
    path: the file it came from, for error messages.

  Returns:
    {torch name: array}, in the original order.
  """
  if not isinstance(obj, dict):
    raise TorchCheckpointError(
      f"{path} holds a {type(obj).__name__}, not a state_dict"
    )
  for key in _NESTED_KEYS:
    if isinstance(obj.get(key), dict):
      obj = obj[key]
      break
  out = {}
  for name, value in obj.items():
    if not hasattr(value, "shape"):
      raise TorchCheckpointError(
        f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor; "
        f"top-level keys: {sorted(obj)[:8]}"
      )
    # DataParallel wraps the model as `module`.
    out[name.removeprefix("module.")] = value
  return out


def _to_numpy(tensor) -> np.ndarray:
  # numpy has no bfloat16: widen low-precision floats to float32.
  if tensor.is_floating_point() and tensor.element_size() < 4:
    tensor = tensor.float()
  return tensor.detach().cpu().numpy()


def _load_torch(path: pathlib.Path) -> dict:
  torch = import_torch()
  try:
    obj = torch.load(path, map_location="cpu", weights_only=True)
  except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
    raise TorchCheckpointError(
      f"cannot read {path} as a PyTorch checkpoint (truncated or corrupt?): "
      f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    ) from e
  except Exception as e:  # noqa: BLE001 - torch's unpickler raises many.
    raise TorchCheckpointError(
      f"cannot load {path} with weights_only=True (it holds more than "
      f"tensors and plain containers?): {type(e).__name__}: "
      f"{str(e).splitlines()[0] if str(e) else ''}"
    ) from e
  sd = unwrap_state_dict(obj, path)
  return {k: _to_numpy(v) for k, v in sd.items()}


def _load_npz(path: pathlib.Path) -> dict:
  try:
    with np.load(path, allow_pickle=False) as f:
      return {k: f[k] for k in f.files}
  except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
    raise TorchCheckpointError(
      f"cannot read {path} as an .npz state_dict (truncated or corrupt?): "
      f"{type(e).__name__}: {e}"
    ) from e


def load_state_dict(path) -> dict[str, np.ndarray]:
  """{torch name: numpy array} from a `.pt`/`.pth` file or an `.npz` export.

  `.pt` files are read with `torch.load(map_location='cpu',
  weights_only=True)` (torch needed); a `module.` prefix is stripped and a
  state_dict nested under `model` (ignite checkpoints) is taken.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise TorchCheckpointError(f"checkpoint file not found: {path}")
  if path.suffix == ".npz":
    return unwrap_state_dict(_load_npz(path), path)
  return _load_torch(path)


def iteration_from_filename(path) -> int | None:
  """The iteration of `reg_ckpt_checkpoint_<it>.pt`-style names, else None."""
  m = _ITERATION.search(pathlib.Path(path).name)
  return int(m.group(1)) if m else None


def save_npz(state_dict: dict, path) -> None:
  """Writes {name: array} as an .npz that `load_state_dict` reads."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez(path, **{k: np.asarray(v) for k, v in state_dict.items()})


# --- mapping a state_dict onto our params ----------------------------------


@dataclasses.dataclass(frozen=True)
class LeafRule:
  """How one of our leaves is read from a torch tensor.

  Attributes:
    torch_leaf: the last component of the torch name (`weight`, ...).
    perm: ours = torch.transpose(perm); None keeps the axis order.
  """

  torch_leaf: str
  perm: tuple[int, ...] | None = None

  def torch_shape(self, shape: tuple) -> tuple:
    """The torch shape that gives our `shape`."""
    if self.perm is None:
      return tuple(shape)
    return tuple(shape[i] for i in np.argsort(self.perm))

  def to_ours(self, value: np.ndarray) -> np.ndarray:
    return value if self.perm is None else np.transpose(value, self.perm)


CONV2D = LeafRule("weight", (2, 3, 1, 0))
# Our ConvUp kernel is (kh, kw, O, I): the same permute of torch's (I,O,h,w).
CONV_TRANSPOSE2D = CONV2D
CONV3D = LeafRule("weight", (2, 3, 4, 1, 0))
CONV3D_SPECTRAL = LeafRule("weight_orig", (2, 3, 4, 1, 0))
BIAS = LeafRule("bias")
GROUP_NORM_SCALE = LeafRule("weight")
# Our SNConv3d keeps torch's u (O,) and v (I*kt*kh*kw,) as they are.
SPECTRAL_U = LeafRule("weight_u")
SPECTRAL_V = LeafRule("weight_v")

# Path = our keys from the root to a leaf, e.g. ("dec", "blocks", 0, ...).
Path = tuple
Rule = Callable[[Path, tuple], tuple[str, LeafRule]]


def default_rule(path: Path, shape: tuple) -> tuple[str, LeafRule]:
  """Torch name and rule of a leaf named after the torch prefixes.

  `kernel` is a Conv2d/ConvTranspose2d (4-D) or Conv3d (5-D) weight,
  `scale` a GroupNorm weight, `bias` a bias.
  """
  leaf, prefix = path[-1], ".".join(str(k) for k in path[:-1])
  rules = {"bias": BIAS, "scale": GROUP_NORM_SCALE}
  rules.update(u=SPECTRAL_U, v=SPECTRAL_V)
  if leaf == "kernel":
    rule = CONV3D if len(shape) == 5 else CONV2D
  elif leaf in rules:
    rule = rules[leaf]
  else:
    raise ConversionError(f"no conversion rule for our leaf {path}")
  return f"{prefix}.{rule.torch_leaf}", rule


def spectral_rule(path: Path, shape: tuple) -> tuple[str, LeafRule]:
  """`default_rule`, with every Conv3d spectral-normalised (`weight_orig`)."""
  if path[-1] == "kernel" and len(shape) == 5:
    prefix = ".".join(str(k) for k in path[:-1])
    return f"{prefix}.{CONV3D_SPECTRAL.torch_leaf}", CONV3D_SPECTRAL
  return default_rule(path, shape)


def _listed(names) -> str:
  names = sorted(names)
  more = len(names) - _MAX_LISTED
  tail = f", ... ({more} more)" if more > 0 else ""
  return ", ".join(names[:_MAX_LISTED]) + tail


def convert_tree(
  state_dict: dict,
  abstract: dict,
  rule: Rule = default_rule,
  *,
  ignore: Callable[[str], bool] = lambda name: False,
) -> dict:
  """Fills a params tree from a torch state_dict.

  Args:
    state_dict: {torch name: array}.
    abstract: nested dict whose leaves have `.shape` and `.dtype`.
    rule: our leaf path and shape -> (torch name, LeafRule).
    ignore: torch names that may stay unused (e.g. a classifier head).

  Returns:
    The `abstract` structure with numpy arrays of its dtypes.

  Raises:
    ConversionError: naming every missing, unexpected or wrongly-shaped
      tensor, with expected and found shapes.
  """
  used, problems = set(), []

  def fill(node, path):
    if isinstance(node, dict):
      return {k: fill(v, path + (k,)) for k, v in node.items()}
    if node is None:  # An absent submodule (e.g. an identity skip).
      return None
    name, r = rule(path, tuple(node.shape))
    want = r.torch_shape(tuple(node.shape))
    if name not in state_dict:
      problems.append(f"missing tensor {name!r} (expected shape {want})")
      return None
    used.add(name)
    value = np.asarray(state_dict[name])
    if tuple(value.shape) != want:
      problems.append(
        f"tensor {name!r} has shape {tuple(value.shape)}, expected {want}"
      )
      return None
    return r.to_ours(value).astype(node.dtype)

  out = fill(abstract, ())
  extra = [k for k in state_dict if k not in used and not ignore(k)]
  if extra:
    problems.append(f"unexpected tensors: {_listed(extra)}")
  if problems:
    raise ConversionError("; ".join(problems))
  return out


# --- CLI -------------------------------------------------------------------


def main(argv=None) -> int:
  p = argparse.ArgumentParser(
    description="Export a PyTorch state_dict (.pt/.pth) to .npz."
  )
  p.add_argument("checkpoint", help="a .pt/.pth file (raw or ignite)")
  p.add_argument("out", help="the .npz to write")
  args = p.parse_args(argv)
  try:
    sd = load_state_dict(args.checkpoint)
  except TorchCheckpointError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  save_npz(sd, args.out)
  print(f"wrote {len(sd)} tensors to {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
