"""Checkpoint integrity: a checksum per saved array, checked at restore.

At save time every array of the train state gets a CRC-32 of its bytes, its
dtype and shape, keyed by its path in the tree (`jax.tree_util.keystr`).
The table is saved as one more item of the same orbax step, so it is
committed (renamed into place) together with the arrays: a save that was
cut short leaves no step at all, never a step without its table. At
restore the restored arrays are hashed again and compared; a damaged array
file that orbax still reads (overwritten bytes) shows up as a mismatch.
"""

import zlib

import jax
import numpy as np

ITEM = "checksums"  # The orbax item holding the table.


def _checkable(x) -> bool:
  """Arrays this process can read whole (replicated or addressable)."""
  if isinstance(x, jax.Array):
    return x.is_fully_addressable or x.is_fully_replicated
  return True


def _digest(a: np.ndarray) -> list:
  a = np.ascontiguousarray(a)
  data = a.reshape(-1).view(np.uint8) if a.size else b""
  return [zlib.crc32(data), a.dtype.str, list(a.shape)]


def checksums(tree) -> dict:
  """{path: [crc32, dtype, shape]} of every leaf of `tree`.

  Leaves sharded over several processes (none in this project's train
  state, which is replicated) get None: they cannot be read whole here.
  """
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  keys = [jax.tree_util.keystr(path) for path, _ in flat]
  ok = [_checkable(x) for _, x in flat]
  host = jax.device_get([x for (_, x), c in zip(flat, ok) if c])
  host = iter(host)
  return {
    k: _digest(np.asarray(next(host))) if c else None for k, c in zip(keys, ok)
  }


def mismatches(table: dict, tree, *, limit: int = 3) -> list[str]:
  """Paths of `tree` whose arrays differ from `table` (at most `limit`).

  `tree` may be a part of what was saved (e.g. the params alone); every
  one of its leaves must have an entry.
  """
  got = checksums(tree)
  bad = []
  for key, digest in got.items():
    want = table.get(key, "absent")
    if want is None or digest is None:
      continue  # Not checkable on this process.
    if want == "absent":
      bad.append(f"{key} has no checksum")
    elif list(want) != digest:
      bad.append(f"{key} differs from what was saved")
  return bad[:limit]
