"""Training-split clip augmentation (REFERENCE.md §7.6).

One colour and one geometric transform are drawn per clip and applied
identically to every frame; the geometric one is applied to the flow field
(and an optional foreground mask) as well. The reference ran torchvision 0.7
functional ops on PIL images; this module reproduces their results in numpy
on uint8 frames, vectorised over all frames:

- colour ops match Pillow bit for bit (blend arithmetic, RGB->L and the
  uint8 HSV round trip of `adjust_hue`);
- the geometric op (reflect-pad S/2, nearest affine about the centre,
  centre crop) is computed as one index map gathered from the unpadded
  frames, which is exact (see `_source_indices`).

Reference quirks kept by default (§11.6, §11.7): the hue shift is drawn from
U(-0.15, 0.30), the translation from integers in [-m, m) with
m = floor(0.05 S), and flow vectors are not rotated with the image.
`symmetric_hue=True` draws U(-0.15, 0.15) instead; `rotate_flow_vectors=True`
rotates (u, v) along with the image (the fix).
"""

import functools
import math
from typing import NamedTuple

import numpy as np


class ColorParams(NamedTuple):
  """Colour jitter factors, applied in this order."""

  brightness: float  # blend factor with black
  contrast: float  # blend factor with the grayscale mean
  hue: float  # shift of the hue circle, in turns
  saturation: float  # blend factor with the grayscale image


class GeomParams(NamedTuple):
  """Affine about the image centre (scale 1, no shear)."""

  angle_deg: float  # positive = clockwise on screen (torchvision <= 0.7)
  tx: int  # horizontal shift in pixels, + right
  ty: int  # vertical shift in pixels, + down


def draw_augmentation(
  rng: np.random.Generator,
  size: int,
  *,
  p_color: float = 0.8,
  p_geom: float = 0.8,
  symmetric_hue: bool = False,
) -> tuple[ColorParams | None, GeomParams | None]:
  """Draws one clip's transforms; None for a transform not applied.

  Always consumes one uniform per gate, so the stream layout only depends
  on which gates open.

  Args:
    rng: random generator.
    size: frame side S (sets the translation range).
    p_color: probability of the colour transform.
    p_geom: probability of the geometric transform.
    symmetric_hue: hue shift from U(-0.15, 0.15) instead of the
      reference's U(-0.15, 0.30).

  Returns:
    (colour params or None, geometric params or None).
  """
  color = None
  if rng.random() < p_color:
    hue_hi = 0.15 if symmetric_hue else 0.30
    color = ColorParams(
      brightness=1.0 + rng.uniform(-0.4, 0.4),
      contrast=1.0 + rng.uniform(-0.5, 0.5),
      hue=rng.uniform(-0.15, hue_hi),
      saturation=1.0 + rng.uniform(-0.4, 0.4),
    )
  geom = None
  if rng.random() < p_geom:
    m = math.floor(0.05 * size)
    angle = rng.uniform(-15.0, 15.0)
    # Exclusive upper bound, as the reference's numpy randint (§11.7).
    tx, ty = (int(t) for t in rng.integers(-m, m, size=2)) if m else (0, 0)
    geom = GeomParams(angle_deg=angle, tx=tx, ty=ty)
  return color, geom


def augment_clip(
  video_thwc: np.ndarray,
  flow_hw2: np.ndarray,
  rng: np.random.Generator,
  *,
  p_color: float = 0.8,
  p_geom: float = 0.8,
  rotate_flow_vectors: bool = False,
  symmetric_hue: bool = False,
  fg_mask_hw: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
  """Augments one training clip (REFERENCE.md §7.6).

  Args:
    video_thwc: (T, S, S, 3) uint8 RGB frames.
    flow_hw2: (S, S, 2) flow in pixels, channels (u, v).
    rng: random generator.
    p_color: probability of the colour transform.
    p_geom: probability of the geometric transform.
    rotate_flow_vectors: rotate (u, v) with the image (fix of §11.6).
    symmetric_hue: hue shift U(-0.15, 0.15) instead of U(-0.15, 0.30).
    fg_mask_hw: optional (S, S) foreground mask, warped like the flow.

  Returns:
    (video (T, S, S, 3) uint8, flow (S, S, 2), mask (S, S) or None), with
    the input dtypes.
  """
  color, geom = draw_augmentation(
    rng,
    video_thwc.shape[1],
    p_color=p_color,
    p_geom=p_geom,
    symmetric_hue=symmetric_hue,
  )
  if color is not None:
    video_thwc = apply_color(video_thwc, color)
  if geom is not None:
    video_thwc, flow_hw2, fg_mask_hw = apply_geometric(
      video_thwc,
      flow_hw2,
      geom,
      fg_mask_hw=fg_mask_hw,
      rotate_flow_vectors=rotate_flow_vectors,
    )
  return video_thwc, flow_hw2, fg_mask_hw


# ---------------------------------------------------------------- colour


def apply_color(video_thwc: np.ndarray, params: ColorParams) -> np.ndarray:
  """Brightness, contrast, hue, saturation with Pillow semantics.

  Each step rounds to uint8 like the PIL images it mimics.

  Args:
    video_thwc: (..., H, W, 3) uint8 RGB (one frame or a stack).
    params: jitter factors.

  Returns:
    Array of the same shape, uint8.
  """
  video_thwc = np.asarray(video_thwc, dtype=np.uint8)
  shape = video_thwc.shape
  # Channel-planar (3, frames, pixels): contiguous planes are faster.
  x = video_thwc.reshape(-1, shape[-3] * shape[-2], 3).transpose(2, 0, 1)
  x = _blend(np.uint8(0), np.ascontiguousarray(x), params.brightness)
  # Contrast pulls towards the rounded mean gray level of each frame.
  mean = np.floor(_gray(x).mean(axis=-1, keepdims=True) + 0.5)
  x = _blend(mean, x, params.contrast)
  x = _adjust_hue(x, params.hue)
  x = _blend(_gray(x), x, params.saturation)
  return x.transpose(1, 2, 0).reshape(shape)


def _blend(a, b: np.ndarray, alpha: float) -> np.ndarray:
  """Pillow `Image.blend(a, b, alpha)`: float32 lerp, clip, truncate."""
  a = np.asarray(a, dtype=np.float32)
  out = a + np.float32(alpha) * (b.astype(np.float32) - a)
  return np.clip(out, 0.0, 255.0).astype(np.uint8)


def _gray(x: np.ndarray) -> np.ndarray:
  """Pillow RGB -> L of planar (3, ...) uint8 (601-2 luma, rounded)."""
  r, g, b = (c.astype(np.int32) for c in x)
  return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def _adjust_hue(x: np.ndarray, hue: float) -> np.ndarray:
  """torchvision 0.7 `adjust_hue` on PIL: uint8 HSV, H += uint8(hue*255).

  Args:
    x: planar (3, ...) uint8 RGB.
    hue: shift in turns of the hue circle.

  Returns:
    Planar (3, ...) uint8 RGB.
  """
  if hue == 0.0:
    return x
  h, s, v = _rgb_to_hsv(x)
  # uint8(hue * 255) truncates towards zero and wraps around the circle.
  h = (h + int(hue * 255.0)) & 255
  return _hsv_to_rgb(h, s, v)


def _rgb_to_hsv(x: np.ndarray):
  """Pillow RGB -> HSV of planar (3, ...) uint8, as int32 planes h, s, v.

  Via tables of `_rgb_to_hsv_exact`: H depends only on which channel is
  the maximum and on the two others' distances to it, S on (max-min, max).
  """
  r, g, b = (c.astype(np.int32) for c in x)
  v = np.maximum(np.maximum(r, g), b)
  dr, dg, db = v - r, v - g, v - b
  # Flat table index (case, first distance, second distance).
  idx = np.where(
    dr == 0,
    (dg << 8) + db,
    np.where(dg == 0, 65536 + (dr << 8) + db, 131072 + (dr << 8) + dg),
  )
  hue_lut, sat_lut, _ = _hsv_tables()
  cr = np.maximum(np.maximum(dr, dg), db)
  h = hue_lut[idx].astype(np.int32)
  return h, sat_lut[(cr << 8) + v].astype(np.int32), v


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Pillow HSV -> RGB of int planes in [0, 255]; planar (3, ...) uint8.

  The sixth of the hue circle picks each of R, G, B from (v, p, q, t);
  s = 0 gives p = q = t = v, i.e. gray, without a special case.
  """
  _, _, (source_lut, p_lut, q_lut, t_lut) = _hsv_tables()
  key = (s << 8) + h
  v32 = v.astype(np.float32)
  # C round() is half away from zero; all values are >= 0. float32 gives
  # the float64 result for every (v, s, h) (checked exhaustively).
  vpqt = [v.astype(np.uint8)] + [
    np.floor(v32 * lut[key] + np.float32(0.5)).astype(np.uint8)
    for lut in (p_lut, q_lut, t_lut)
  ]
  flat = np.stack(vpqt).reshape(-1)
  n = h.size
  h, pixel = h.reshape(-1), np.arange(n, dtype=np.int32)
  # One flat gather per channel: source plane * n + pixel index.
  rgb = [flat[src[h] * np.int32(n) + pixel] for src in source_lut]
  return np.stack(rgb).reshape((3,) + v.shape)


# Which of (v, p, q, t) is R, G, B in each sixth of the hue circle.
_SECTOR_SOURCES = np.array(
  [[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]]
)


@functools.cache
def _hsv_tables():
  """Tables for the uint8 HSV round trip, built once per process.

  Returns:
    hue (3 * 65536,) uint8 over (max channel, d1, d2); saturation
    (65536,) uint8 over (max - min, max); for HSV -> RGB, the (3, 256)
    source plane of R, G, B over h and the factors 1 - fs, 1 - fs*f and
    1 - fs*(1 - f), (65536,) float32 over (s, h), computed as Pillow's C
    code does.
  """
  f32, f64 = np.float32, np.float64
  # Channel values 255 - d for row-major (d1, d2); the maximum is 255.
  d1, d2 = (255 - a.ravel() for a in np.mgrid[0:256, 0:256])
  top = np.full_like(d1, 255)
  planes = ((top, d1, d2), (d1, top, d2), (d1, d2, top))
  rgb = np.concatenate([np.stack(c, axis=-1) for c in planes])
  hue_lut = _rgb_to_hsv_exact(rgb)[:, 0].copy()
  cr, maxc = (a.ravel() for a in np.mgrid[0:256, 0:256])
  sat = (cr.astype(f32) / np.maximum(maxc, 1).astype(f32)).astype(f64)
  sat_lut = np.clip((sat * 255.0).astype(np.int32), 0, 255).astype(np.uint8)
  s, h = (a.ravel() for a in np.mgrid[0:256, 0:256])
  h6 = h.astype(f64) * 6.0 / 255.0
  f = (h6 - np.floor(h6)).astype(f32)
  fs = (s.astype(f64) / 255.0).astype(f32)
  factors = tuple(
    c.astype(f32)
    for c in (
      1.0 - fs.astype(f64),
      1.0 - (fs * f).astype(f64),
      1.0 - fs.astype(f64) * (1.0 - f.astype(f64)),
    )
  )
  sector = np.floor(np.arange(256) * 6.0 / 255.0).astype(np.int64) % 6
  # Row c: which of (v, p, q, t) channel c takes, for every h.
  source_lut = _SECTOR_SOURCES[sector].T.astype(np.int32)
  return hue_lut, sat_lut, (source_lut,) + factors


def _rgb_to_hsv_exact(x: np.ndarray) -> np.ndarray:
  """Pillow RGB -> HSV of (..., 3) uint8 (float32 temporaries, as in C)."""
  f32, f64 = np.float32, np.float64
  x = x.astype(np.int32)
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  maxc, minc = x.max(axis=-1), x.min(axis=-1)
  gray = maxc == minc
  cr = np.where(gray, 1, maxc - minc).astype(f32)
  rc, gc, bc = (((maxc - c).astype(f32) / cr).astype(f64) for c in (r, g, b))
  h = np.where(
    r == maxc, bc - gc, np.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc)
  ).astype(f32)
  h = np.fmod(h.astype(f64) / 6.0 + 1.0, 1.0).astype(f32)
  s = cr / np.maximum(maxc, 1).astype(f32)
  out = np.empty(x.shape, dtype=np.uint8)
  out[..., 0] = np.where(gray, 0, (h.astype(f64) * 255.0).astype(np.int32))
  out[..., 1] = np.where(gray, 0, (s.astype(f64) * 255.0).astype(np.int32))
  out[..., 2] = maxc
  return out


# ------------------------------------------------------------- geometric


def apply_geometric(
  video_thwc: np.ndarray,
  flow_hw2: np.ndarray,
  params: GeomParams,
  *,
  fg_mask_hw: np.ndarray | None = None,
  rotate_flow_vectors: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
  """Warps frames, flow and mask with one nearest-neighbour affine.

  Args:
    video_thwc: (T, H, W, C) frames, any dtype.
    flow_hw2: (H, W, 2) flow in pixels, channels (u, v).
    params: angle and translation.
    fg_mask_hw: optional (H, W) mask.
    rotate_flow_vectors: also rotate each (u, v) by the image rotation.

  Returns:
    (video, flow, mask) warped, shapes and dtypes unchanged.
  """
  video_thwc = np.asarray(video_thwc)
  h, w = video_thwc.shape[1:3]
  rows_hw, cols_hw = _source_indices(h, w, params)
  video_thwc = video_thwc[:, rows_hw, cols_hw]
  flow_hw2 = np.asarray(flow_hw2)[rows_hw, cols_hw]
  if rotate_flow_vectors:
    # Displacements transform with the linear part of the image warp.
    rot = _rotation(params.angle_deg)
    flow_hw2 = (flow_hw2 @ rot.T).astype(flow_hw2.dtype)
  if fg_mask_hw is not None:
    fg_mask_hw = np.asarray(fg_mask_hw)[rows_hw, cols_hw]
  return video_thwc, flow_hw2, fg_mask_hw


def _rotation(angle_deg: float) -> np.ndarray:
  """Forward 2x2 rotation in (x right, y down) coords, + = clockwise."""
  c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
  return np.array([[c, -s], [s, c]])


def _source_indices(h: int, w: int, params: GeomParams):
  """(H, W) source row and column of every output pixel.

  Reference pipeline: reflect-pad (H//2, W//2) (np.pad 'reflect', no edge
  repeat); PIL AFFINE + NEAREST with torchvision 0.7's inverse matrix about
  c = (Wp/2 + 0.5, Hp/2 + 0.5), which Pillow evaluates at pixel centres in
  16.16 fixed point and floors; centre crop back to H x W. Emulated here
  with the same integers, then the padded index is reflected back into the
  frame. For |angle| <= 15 deg and |t| <= 0.05 S every sample lies within
  S/2 of the frame (crop corner 0.71 S from the centre, padded border 1 S),
  so PIL never uses its fill colour and one reflection equals the padded
  lookup: bit-exact, not an approximation. (At angle 0 Pillow takes a
  float path instead; integer shifts make both exact.)
  """
  ph, pw = h // 2, w // 2
  m = _inverse_affine_matrix(
    params.angle_deg, params.tx, params.ty, w + 2 * pw, h + 2 * ph
  )
  fix = lambda v: math.floor(v * 65536.0 + 0.5)
  a0, a1, a3, a4 = fix(m[0]), fix(m[1]), fix(m[3]), fix(m[4])
  a2 = fix(m[2] + m[0] * 0.5 + m[1] * 0.5)
  a5 = fix(m[5] + m[3] * 0.5 + m[4] * 0.5)
  ys = np.arange(ph, ph + h, dtype=np.int64)[:, None]
  xs = np.arange(pw, pw + w, dtype=np.int64)[None, :]
  cols = ((a2 + xs * a0 + ys * a1) >> 16) - pw
  rows = ((a5 + xs * a3 + ys * a4) >> 16) - ph
  return _reflect(rows, h), _reflect(cols, w)


def _inverse_affine_matrix(angle_deg, tx, ty, width, height):
  """PIL AFFINE data (output -> input) of torchvision 0.7 `affine`."""
  cx, cy = width * 0.5 + 0.5, height * 0.5 + 0.5
  rot = math.radians(angle_deg)
  m = [math.cos(rot), math.sin(rot), 0.0, -math.sin(rot), math.cos(rot), 0.0]
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy
  return m


def _reflect(i: np.ndarray, n: int) -> np.ndarray:
  """Reflect-101 index (..., 2, 1, 0, 1, 2, ..., n-1, n-2, ...)."""
  if n == 1:
    return np.zeros_like(i)
  period = 2 * (n - 1)
  i = np.mod(i, period)
  return np.where(i < n, i, period - i)
