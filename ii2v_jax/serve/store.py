"""Images and videos held in memory under random ids, LRU-bounded.

Requests name an image or a video by the id the server gave out; nothing
a request sends is ever used as a path on disk.
"""

import collections
import dataclasses
import io
import secrets
import threading

import numpy as np
from PIL import Image

from ii2v_jax.data import user_image

VIEW_MAX = 1024  # Longest side of the image the page shows.


@dataclasses.dataclass
class ImageEntry:
  """What the server keeps of an image (never the full upload)."""

  id: str
  fit: user_image.Fit
  x0: np.ndarray  # (S, S, 3) uint8 model input.
  first: np.ndarray  # (H, W, 3) uint8 first frame at display size.
  view_jpeg: bytes  # The whole image for the page, at most VIEW_MAX.
  label: str

  def describe(self) -> dict:
    return {
      "id": self.id,
      "url": f"/api/image/{self.id}",
      "width": self.fit.image_width,
      "height": self.fit.image_height,
      "box": list(self.fit.box_fractions()),
      "fit": self.fit.mode,
      "label": self.label,
    }


@dataclasses.dataclass
class VideoEntry:
  id: str
  image: ImageEntry
  pokes_px: list  # (x, y, dx, dy) in image pixels.
  video: np.ndarray  # (T, S, S, 3) uint8 model frames.


def new_id() -> str:
  return secrets.token_urlsafe(12)


def make_image_entry(image_hw3, *, size, poke_size, fit_mode, label=""):
  """Fits an image with the CLI's mapping and keeps what serving needs."""
  fit = user_image.fit_image(image_hw3, size, poke_size, fit_mode)
  h, w = image_hw3.shape[:2]
  scale = min(1.0, VIEW_MAX / max(h, w))
  view = Image.fromarray(image_hw3)
  if scale < 1:
    view = view.resize(
      (max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR
    )
  buf = io.BytesIO()
  view.save(buf, "JPEG", quality=92)
  return ImageEntry(
    id=new_id(),
    fit=fit,
    x0=user_image.model_input(image_hw3, fit),
    first=user_image.display_frame(image_hw3, fit),
    view_jpeg=buf.getvalue(),
    label=label,
  )


class LruStore:
  """A thread-safe id -> entry map holding at most `capacity` entries.

  `pinned` entries (the default image and the gallery) are never evicted.
  """

  def __init__(self, capacity: int):
    self.capacity = capacity
    self._items: collections.OrderedDict = collections.OrderedDict()
    self._pinned: dict = {}
    self._lock = threading.Lock()

  def put(self, entry, *, pinned: bool = False):
    with self._lock:
      if pinned:
        self._pinned[entry.id] = entry
        return entry
      self._items[entry.id] = entry
      self._items.move_to_end(entry.id)
      while len(self._items) > self.capacity:
        self._items.popitem(last=False)
    return entry

  def get(self, key):
    if not isinstance(key, str):
      return None
    with self._lock:
      if key in self._pinned:
        return self._pinned[key]
      entry = self._items.get(key)
      if entry is not None:
        self._items.move_to_end(key)
      return entry

  def __len__(self) -> int:
    with self._lock:
      return len(self._items) + len(self._pinned)
