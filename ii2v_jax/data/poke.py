"""Pokes: sampling them from optical flow and building the poke map.

A poke is a pixel location (row, col) plus a 2-D displacement (u, v) in
pixels of the model resolution S; u is horizontal (+x right), v vertical
(+y down). The model sees it as a (S, S, 2) float32 map that is zero except
for a square patch of side 2 * floor(poke_size / 2) + 1 around the location
holding (u, v) (REFERENCE.md §2).

Training, evaluation and sampling share `sample_poke` (the reference rule of
§8.4). Everything here is numpy-only and takes an explicit
`np.random.Generator`, so it runs in data-loader worker processes.
"""

import math
from collections.abc import Sequence

import numpy as np

Poke = tuple[int, int, float, float]  # (row, col, u, v)


def resize_flow(flow_hw2: np.ndarray, size: int) -> np.ndarray:
  """Resizes a flow field to (size, size) and rescales its vectors.

  Bilinear with align_corners=True; u is multiplied by size / W and v by
  size / H separately (the reference scaled both by the width ratio, §11.11).
  Identity for a (size, size, 2) input.

  Args:
    flow_hw2: (H, W, 2) flow in pixels of the H x W grid, channels (u, v).
    size: output side S.

  Returns:
    (S, S, 2) float32 flow in pixels of the S x S grid.
  """
  flow_hw2 = np.asarray(flow_hw2, dtype=np.float32)
  h, w = flow_hw2.shape[:2]
  out = flow_hw2
  if (h, w) != (size, size):
    out = _resize_axis(_resize_axis(out, size, axis=0), size, axis=1)
  scale = np.array([size / w, size / h], dtype=np.float32)
  return (out * scale).astype(np.float32)


def _resize_axis(x: np.ndarray, size: int, axis: int) -> np.ndarray:
  """Linear align_corners=True resampling of one axis to `size` samples."""
  n = x.shape[axis]
  pos = np.linspace(0.0, n - 1.0, size) if size > 1 else np.zeros(1)
  lo = np.clip(np.floor(pos).astype(np.int64), 0, max(n - 2, 0))
  hi = np.minimum(lo + 1, n - 1)
  frac = (pos - lo).astype(np.float32)
  shape = [1] * x.ndim
  shape[axis] = size
  frac = frac.reshape(shape)
  x_lo, x_hi = np.take(x, lo, axis=axis), np.take(x, hi, axis=axis)
  return x_lo + (x_hi - x_lo) * frac


def _window_magnitude(flow_hw2: np.ndarray, poke_size: int) -> np.ndarray:
  """|F| on the window [ps, H-ps) x [ps, W-ps) of a (H, W, 2) flow."""
  if flow_hw2.ndim != 3 or flow_hw2.shape[2] != 2:
    raise ValueError(f"flow must have shape (H, W, 2), got {flow_hw2.shape}")
  h, w = flow_hw2.shape[:2]
  if poke_size < 0 or min(h, w) - 2 * poke_size < 2:
    raise ValueError(
      f"poke_size={poke_size} leaves a window of under 2x2 pixels in a "
      f"{h}x{w} flow"
    )
  win = flow_hw2[poke_size : h - poke_size, poke_size : w - poke_size]
  mag_hw = np.hypot(win[..., 0], win[..., 1], dtype=np.float64)
  if not np.all(np.isfinite(mag_hw)):
    raise ValueError("flow contains nan or inf")
  return mag_hw


def _normalise(mag_hw: np.ndarray) -> np.ndarray | None:
  """Min-max normalises to [0, 1]; None for a constant field.

  Nothing stands out in a constant field; the reference divides 0 by 0
  there and its nan comparisons yield no candidate.
  """
  lo, hi = mag_hw.min(), mag_hw.max()
  if hi <= lo:
    return None
  return (mag_hw - lo) / (hi - lo)


def _mask_window(fg_mask_hw, shape_hw, poke_size: int) -> np.ndarray:
  mask_hw = np.asarray(fg_mask_hw)
  if mask_hw.shape != shape_hw:
    raise ValueError(f"fg mask shape {mask_hw.shape} != flow {shape_hw}")
  h, w = shape_hw
  win = mask_hw[poke_size : h - poke_size, poke_size : w - poke_size]
  return win.astype(np.float64)


def _pick(cand_hw: np.ndarray, rng: np.random.Generator, offset: int):
  """Uniform pick among True pixels, as full-image (row, col)."""
  rows, cols = np.nonzero(cand_hw)
  if rows.size == 0:
    return None
  i = rng.integers(rows.size)
  return int(rows[i]) + offset, int(cols[i]) + offset


def sample_poke_location(
  flow_hw2: np.ndarray,
  rng: np.random.Generator,
  *,
  poke_size: int = 3,
  fg_mask_hw: np.ndarray | None = None,
) -> tuple[int, int] | None:
  """Draws a poke location where the flow is strong (REFERENCE.md §8.4).

  a = |F| on the window [ps, S-ps)^2, min-max normalised; a_f = a * mask.
  With mu, sigma the mean and unbiased std of a_f over the window, the
  candidates are a_f > mu + 2 sigma, else a > mu + sigma, else a > mu (the
  fallbacks use the unmasked a); the location is uniform among them.

  Args:
    flow_hw2: (H, W, 2) flow in pixels.
    rng: random generator.
    poke_size: ps; the window keeps the poke patch inside the image.
    fg_mask_hw: optional (H, W) foreground mask (bool or {0, 1}).

  Returns:
    (row, col) in the full image, or None when no pixel qualifies (all-zero
    or constant flow magnitude): the caller then draws another clip.
  """
  flow_hw2 = np.asarray(flow_hw2)
  a_hw = _normalise(_window_magnitude(flow_hw2, poke_size))
  if a_hw is None:
    return None
  af_hw = a_hw
  if fg_mask_hw is not None:
    af_hw = a_hw * _mask_window(fg_mask_hw, flow_hw2.shape[:2], poke_size)
  mu, sigma = af_hw.mean(), af_hw.std(ddof=1)
  for cand_hw in (af_hw > mu + 2 * sigma, a_hw > mu + sigma, a_hw > mu):
    loc = _pick(cand_hw, rng, poke_size)
    if loc is not None:
      return loc
  return None


def make_poke_map(
  size: int, pokes: Sequence[Poke], *, poke_size: int = 3
) -> np.ndarray:
  """Writes pokes into one zero (S, S, 2) map (iPOKE multi-poke, §11.10).

  Each poke fills a square patch of side 2 * floor(poke_size / 2) + 1
  centred on (row, col) with (u, v); later pokes overwrite earlier ones
  where patches overlap.

  Args:
    size: map side S.
    pokes: sequence of (row, col, u, v); row/col integer pixel indices,
      u/v displacement in pixels of the S x S grid.
    poke_size: ps.

  Returns:
    (S, S, 2) float32 poke map, channels (u, v).

  Raises:
    ValueError: a patch would leave the map (clamp the location first, see
      `poke_from_image_pixels`) or a displacement is not finite.
  """
  half = poke_size // 2
  poke_hw2 = np.zeros((size, size, 2), dtype=np.float32)
  for i, (row, col, u, v) in enumerate(pokes):
    if int(row) != row or int(col) != col:
      raise ValueError(f"poke {i} location ({row}, {col}) is not integer")
    row, col = int(row), int(col)
    if not (half <= row < size - half and half <= col < size - half):
      raise ValueError(
        f"poke {i} at (row={row}, col={col}): its {2 * half + 1}x"
        f"{2 * half + 1} patch leaves the {size}x{size} map"
      )
    if not (math.isfinite(u) and math.isfinite(v)):
      raise ValueError(f"poke {i} has a non-finite value (u={u}, v={v})")
    poke_hw2[row - half : row + half + 1, col - half : col + half + 1] = (
      u,
      v,
    )
  return poke_hw2


def sample_poke(
  flow_hw2: np.ndarray,
  rng: np.random.Generator,
  *,
  poke_size: int = 3,
  fg_mask_hw: np.ndarray | None = None,
) -> tuple[np.ndarray, Poke] | None:
  """Samples one poke from a flow field (REFERENCE.md §8.4).

  The location comes from `sample_poke_location`, the value is the flow
  vector at that pixel.

  Args:
    flow_hw2: (S, S, 2) flow in pixels of the S x S grid.
    rng: random generator.
    poke_size: ps.
    fg_mask_hw: optional (S, S) foreground mask.

  Returns:
    ((S, S, 2) float32 poke map, (row, col, u, v)), or None when no
    location qualifies.
  """
  flow_hw2 = np.asarray(flow_hw2)
  if flow_hw2.shape[0] != flow_hw2.shape[1]:
    raise ValueError(f"flow must be square, got {flow_hw2.shape}")
  loc = sample_poke_location(
    flow_hw2, rng, poke_size=poke_size, fg_mask_hw=fg_mask_hw
  )
  if loc is None:
    return None
  return _poke_at(flow_hw2, loc, loc, poke_size)


def _poke_at(flow_hw2, loc, value_loc, poke_size):
  """Poke at `loc` holding the flow vector found at `value_loc`."""
  u, v = (float(x) for x in flow_hw2[value_loc])
  poke = (loc[0], loc[1], u, v)
  size = flow_hw2.shape[0]
  return make_poke_map(size, [poke], poke_size=poke_size), poke


def zero_poke(
  flow_hw2: np.ndarray,
  rng: np.random.Generator,
  *,
  poke_size: int = 3,
  fg_mask_hw: np.ndarray | None = None,
) -> tuple[np.ndarray, Poke] | None:
  """Samples a background poke for a "no motion" sample (§8.5).

  The location lies in the window [ps, S-ps)^2 outside the foreground mask
  if one is given, else at a pixel whose flow magnitude is at most its 5th
  percentile. The value is the real flow at a random pixel with
  a > mu + sigma (fallback a > mu), a and mu, sigma as in
  `sample_poke_location`. The caller pairs it with a static clip.

  Args:
    flow_hw2: (S, S, 2) flow in pixels of the S x S grid.
    rng: random generator.
    poke_size: ps.
    fg_mask_hw: optional (S, S) foreground mask.

  Returns:
    ((S, S, 2) float32 poke map, (row, col, u, v)), or None when the flow
    magnitude is constant or the mask covers the whole window.
  """
  flow_hw2 = np.asarray(flow_hw2)
  if flow_hw2.shape[0] != flow_hw2.shape[1]:
    raise ValueError(f"flow must be square, got {flow_hw2.shape}")
  a_hw = _normalise(_window_magnitude(flow_hw2, poke_size))
  if a_hw is None:
    return None
  af_hw = a_hw
  if fg_mask_hw is None:
    bg_hw = a_hw <= np.percentile(a_hw, 5)
  else:
    m_hw = _mask_window(fg_mask_hw, flow_hw2.shape[:2], poke_size)
    af_hw, bg_hw = a_hw * m_hw, m_hw == 0
  mu, sigma = af_hw.mean(), af_hw.std(ddof=1)
  cand_hw = a_hw > mu + sigma
  value_loc = _pick(cand_hw if cand_hw.any() else a_hw > mu, rng, poke_size)
  loc = _pick(bg_hw, rng, poke_size)
  if loc is None or value_loc is None:
    return None
  return _poke_at(flow_hw2, loc, value_loc, poke_size)


def poke_from_image_pixels(
  x: float,
  y: float,
  dx: float,
  dy: float,
  *,
  image_height: int,
  image_width: int,
  size: int,
  poke_size: int,
) -> Poke:
  """Maps a user's poke on an image of any size to the model grid (§12).

  Location and displacement are scaled by size / image_width (x) and
  size / image_height (y) separately. The location is floored, then
  clamped to [floor(ps/2), size - 1 - floor(ps/2)] so that its patch fits.

  Args:
    x: column of the poked pixel in image pixels, in [0, image_width).
    y: row of the poked pixel in image pixels, in [0, image_height).
    dx: horizontal displacement in image pixels (+ right).
    dy: vertical displacement in image pixels (+ down).
    image_height: H of the image the poke was given on.
    image_width: W of that image.
    size: model resolution S.
    poke_size: ps.

  Returns:
    (row, col, u, v) with u, v in pixels of the S x S grid.

  Raises:
    ValueError: (x, y) lies outside the image, a value is not finite, or
      the sizes are invalid.
  """
  half = poke_size // 2
  if image_height <= 0 or image_width <= 0 or size < 2 * half + 1:
    raise ValueError(
      f"invalid sizes: image {image_width}x{image_height}, model {size}, "
      f"poke_size {poke_size}"
    )
  if not all(math.isfinite(t) for t in (x, y, dx, dy)):
    raise ValueError(f"poke ({x}, {y}, {dx}, {dy}) has a non-finite value")
  if not (0 <= x < image_width and 0 <= y < image_height):
    raise ValueError(
      f"poke location (x={x}, y={y}) lies outside the "
      f"{image_width}x{image_height} (width x height) image"
    )
  sx, sy = size / image_width, size / image_height
  row = min(max(math.floor(y * sy), half), size - 1 - half)
  col = min(max(math.floor(x * sx), half), size - 1 - half)
  return row, col, dx * sx, dy * sy


def parse_poke(text: str) -> tuple[float, float, float, float]:
  """Parses "X,Y,DX,DY" (image pixels; X column, Y row) into floats.

  Raises:
    ValueError: not exactly four comma-separated finite numbers.
  """
  parts = [p.strip() for p in str(text).split(",")]
  if len(parts) != 4:
    raise ValueError(
      f"poke {text!r} must be 4 comma-separated numbers X,Y,DX,DY, "
      f"got {len(parts)} field(s)"
    )
  values = []
  for name, part in zip(("X", "Y", "DX", "DY"), parts):
    try:
      value = float(part)
    except ValueError:
      raise ValueError(
        f"poke {text!r}: {name}={part!r} is not a number"
      ) from None
    if not math.isfinite(value):
      raise ValueError(f"poke {text!r}: {name}={part!r} is not finite")
    values.append(value)
  return tuple(values)
