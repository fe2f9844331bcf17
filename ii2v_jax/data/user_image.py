"""A user's image and pokes -> the model's square input and poke map.

One mapping for the sampling CLI and the web app. An image of any size and
aspect is decoded (JPEG, PNG or WebP; EXIF orientation applied; grayscale,
palette, alpha and 16-bit converted to 8-bit RGB), then fitted to the
model's S x S input in one of three ways:

  crop    the largest centred square (the rule the dataset builders use,
          datasets/video_common/frames.center_square), then resized;
  pad     the image centred on a square of side max(H, W), its edge pixels
          repeated outwards, then resized;
  squash  the whole image resized to S x S (aspect not kept).

The square region the model sees is a `Fit`; pokes given in image pixels
(or as fractions of the image) go through it to the model grid, and the
model's frames come back at a display size of the same region.
"""

import dataclasses
import io
import math
import pathlib
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps

from ii2v_jax.data import poke as poke_lib

FITS = ("crop", "pad", "squash")
FORMATS = ("JPEG", "PNG", "WEBP")
MAX_BYTES = 25 * 2**20
MAX_PIXELS = 40_000_000
DISPLAY_MAX = 512  # Longest side of rendered video frames.
DATASET_SIDE = 256  # Side at which dataset frames are offered as images.


class ImageError(ValueError):
  """A bad image; `too_large` marks a size cap (HTTP 413)."""

  def __init__(self, message: str, *, too_large: bool = False):
    super().__init__(message)
    self.too_large = too_large


def decode_image(
  data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
  """Encoded JPEG/PNG/WebP bytes -> (H, W, 3) uint8 RGB, upright.

  Raises:
    ImageError: not an image of those formats, damaged, or over the caps.
  """
  if len(data) > max_bytes:
    raise ImageError(
      f"image is {len(data) / 2**20:.1f} MiB; the limit is "
      f"{max_bytes / 2**20:.0f} MiB",
      too_large=True,
    )
  if not data:
    raise ImageError("the image file is empty")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    try:
      img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:
      img = None
    except Exception:
      raise ImageError(
        "cannot read image: not a JPEG, PNG or WebP file"
      ) from None
    if img is None or img.width * img.height > max_pixels:
      raise ImageError(
        f"image has too many pixels; the limit is {max_pixels / 1e6:g} "
        "megapixels",
        too_large=True,
      )
    try:
      img.load()
      return _to_rgb(ImageOps.exif_transpose(img))
    except Exception:
      raise ImageError(
        "cannot read image: the file is truncated or damaged"
      ) from None


def _to_rgb(img: Image.Image) -> np.ndarray:
  """Any PIL mode -> uint8 RGB; transparency is composited on white."""
  if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
    # 16-bit grayscale: 0..65535 onto 0..255. Mode "I" (32-bit) is how
    # some 16-bit files open: scaled when its values exceed 8 bits.
    a = np.asarray(img, dtype=np.float64)
    wide = img.mode.startswith("I;16") or (img.mode == "I" and a.max() > 255)
    scale = 255.0 / 65535.0 if wide else 1.0
    gray = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
  if img.mode == "P" or "A" in img.mode or "transparency" in img.info:
    img = img.convert("RGBA")
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    img = Image.alpha_composite(white, img)
  return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def read_image(path, **caps) -> np.ndarray:
  """An image file -> (H, W, 3) uint8 RGB, as `decode_image`."""
  p = pathlib.Path(path)
  if not p.is_file():
    raise ImageError(f"image not found: {path}")
  limit = caps.get("max_bytes", MAX_BYTES)
  if p.stat().st_size > limit:
    raise ImageError(
      f"image {path} is {p.stat().st_size / 2**20:.1f} MiB; the limit is "
      f"{limit / 2**20:.0f} MiB",
      too_large=True,
    )
  try:
    return decode_image(p.read_bytes(), **caps)
  except ImageError as e:
    raise ImageError(f"{e}: {path}", too_large=e.too_large) from None


@dataclasses.dataclass(frozen=True)
class Fit:
  """The region of an image the model sees, and the maps to and from it.

  The region is (left, top, width, height) in image pixels; for "pad" it
  reaches past the image, for "squash" it is the whole (non-square) image.
  """

  image_width: int
  image_height: int
  size: int
  poke_size: int
  mode: str
  left: int
  top: int
  width: int
  height: int

  def box_fractions(self) -> tuple[float, float, float, float]:
    """The region as (left, top, width, height) fractions of the image."""
    w, h = self.image_width, self.image_height
    return self.left / w, self.top / h, self.width / w, self.height / h

  def poke_to_model(self, x, y, dx, dy) -> poke_lib.Poke:
    """A poke in image pixels -> (row, col, u, v) on the model grid.

    Raises:
      ValueError: a value is not finite, or (x, y) lies off the image or
        outside the region the model sees.
    """
    if not all(math.isfinite(v) for v in (x, y, dx, dy)):
      raise ValueError(f"poke ({x}, {y}, {dx}, {dy}) has a non-finite value")
    w, h = self.image_width, self.image_height
    if not (0 <= x < w and 0 <= y < h):
      raise ValueError(
        f"poke location (x={x:g}, y={y:g}) lies outside the {w}x{h} "
        "(width x height) image"
      )
    cx, cy = x - self.left, y - self.top
    if not (0 <= cx < self.width and 0 <= cy < self.height):
      raise ValueError(
        f"poke location (x={x:g}, y={y:g}) lies outside the model's "
        f"centre crop (x {self.left}..{self.left + self.width}, y "
        f"{self.top}..{self.top + self.height}); poke inside it or use "
        "the pad fit"
      )
    return poke_lib.poke_from_image_pixels(
      cx,
      cy,
      dx,
      dy,
      image_height=self.height,
      image_width=self.width,
      size=self.size,
      poke_size=self.poke_size,
    )

  def fractions_to_pixels(self, fx, fy, fdx, fdy) -> tuple:
    """A poke as fractions of the image's width and height -> pixels."""
    w, h = self.image_width, self.image_height
    return fx * w, fy * h, fdx * w, fdy * h

  def display_size(self) -> tuple[int, int]:
    """(height, width) of rendered frames: the region, long side clamped
    to [S, DISPLAY_MAX], both sides even (H.264 needs even sizes)."""
    long_side = max(self.width, self.height)
    scale = min(max(1.0, self.size / long_side), DISPLAY_MAX / long_side)
    even = lambda n: max(2, int(round(n * scale)) // 2 * 2)
    return even(self.height), even(self.width)

  def to_display(self, x, y, dx, dy) -> tuple:
    """A poke in image pixels -> pixels of the rendered frames."""
    dh, dw = self.display_size()
    sx, sy = dw / self.width, dh / self.height
    return (x - self.left) * sx, (y - self.top) * sy, dx * sx, dy * sy


def fit_image(
  image_hw3: np.ndarray, size: int, poke_size: int, mode: str = "crop"
) -> Fit:
  """The `Fit` of an (H, W, 3) image onto the S x S model input."""
  if mode not in FITS:
    raise ValueError(f"fit must be one of {FITS}, got {mode!r}")
  h, w = image_hw3.shape[:2]
  if mode == "squash":
    region = (0, 0, w, h)
  elif mode == "crop":  # datasets/video_common/frames.center_square
    side = min(h, w)
    region = ((w - side) // 2, (h - side) // 2, side, side)
  else:
    side = max(h, w)
    region = (-((side - w) // 2), -((side - h) // 2), side, side)
  return Fit(w, h, size, poke_size, mode, *region)


def _region(image_hw3: np.ndarray, fit: Fit) -> np.ndarray:
  """The pixels of the fit's region (edge pixels repeated for "pad")."""
  top, left = max(fit.top, 0), max(fit.left, 0)
  crop = image_hw3[top : fit.top + fit.height, left : fit.left + fit.width]
  if fit.mode != "pad":
    return crop
  pad_top, pad_left = top - fit.top, left - fit.left
  return cv2.copyMakeBorder(
    np.ascontiguousarray(crop),
    pad_top,
    fit.height - pad_top - crop.shape[0],
    pad_left,
    fit.width - pad_left - crop.shape[1],
    cv2.BORDER_REPLICATE,
  )


def model_input(image_hw3: np.ndarray, fit: Fit) -> np.ndarray:
  """(S, S, 3) uint8: the region resized with INTER_LINEAR (as the
  builders' `to_square`)."""
  region = _region(image_hw3, fit)
  s = fit.size
  if region.shape[:2] == (s, s):
    return np.ascontiguousarray(region)
  return cv2.resize(region, (s, s), interpolation=cv2.INTER_LINEAR)


def display_frame(image_hw3: np.ndarray, fit: Fit) -> np.ndarray:
  """The region at `fit.display_size()`: the first frame of a video."""
  region = _region(image_hw3, fit)
  dh, dw = fit.display_size()
  if region.shape[:2] == (dh, dw):
    return np.ascontiguousarray(region)
  shrink = dh * dw < region.shape[0] * region.shape[1]
  interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
  return cv2.resize(region, (dw, dh), interpolation=interp)


def poke_map(fit: Fit, pokes_px) -> np.ndarray:
  """(S, S, 2) float32 map of pokes given as (x, y, dx, dy) image pixels."""
  model_pokes = [fit.poke_to_model(*p) for p in pokes_px]
  return poke_lib.make_poke_map(fit.size, model_pokes, poke_size=fit.poke_size)


def dataset_images(data_cfg, count: int) -> list[np.ndarray]:
  """First frames of the first `count` test clips at 256 x 256.

  The first is the sampling CLI's default image. Raises
  `pipeline.DataError` when the dataset is not built.
  """
  from ii2v_jax.data import pipeline

  source = pipeline.open_split(
    data_cfg.data_dir, data_cfg.name, data_cfg.test_split
  )
  side = (DATASET_SIDE, DATASET_SIDE)
  return [
    cv2.resize(source[i]["video"][0], side, interpolation=cv2.INTER_CUBIC)
    for i in range(min(count, len(source)))
  ]
