"""Antialiased rendering, ownership maps and exact flow of articulated scenes.

Everything is drawn at SUPERSAMPLE x the output size and block-averaged
(cv2.INTER_AREA), which is deterministic. Pixel convention at output size S:
pixel (row, col) has its centre at (x, y) = (col, row) pixels, i.e. at
normalized ((col + 0.5) / S, (row + 0.5) / S).
"""

import dataclasses

import cv2
import numpy as np

from datasets.articulated_pokes import objects, simulate

SUPERSAMPLE = 4
BACKGROUND, FIXED = -1, -2  # Owner codes besides link indices.
_FIXED_LABEL = 255  # Label of fixed parts in supersampled label maps.
_SHIFT = 4  # Sub-pixel bits of cv2.fillPoly coordinates.


@dataclasses.dataclass(frozen=True)
class Background:
  """Static, smooth, low-contrast texture: base colour plus a field."""

  base_rgb: np.ndarray  # (3,) floats in [0, 1].
  tint_rgb: np.ndarray  # (3,) direction in colour space of the variation.
  noise_gg: np.ndarray  # (G, G) coarse noise in [-1, 1], upsampled cubically.
  pattern: str  # "noise", "gradient" or "stripes".
  angle: float  # Gradient / stripe direction, radians.
  period: float  # Stripe period, normalized units.
  amplitude: float  # Amplitude of the pattern (noise has its own).


def make_background(rng: np.random.Generator, light: bool) -> Background:
  """Random background, light or dark (luma apart from the object's)."""
  luma = rng.uniform(0.65, 0.88) if light else rng.uniform(0.1, 0.28)
  base = objects.luma_color(rng.random(), rng.uniform(0.05, 0.3), luma)
  pattern = str(rng.choice(["noise", "gradient", "stripes"]))
  amplitude = {"noise": 0.0, "gradient": 0.1, "stripes": 0.05}[pattern]
  return Background(
    base_rgb=base,
    tint_rgb=0.6 + 0.4 * rng.random(3),
    noise_gg=rng.uniform(-1, 1, (int(rng.integers(4, 8)),) * 2),
    pattern=pattern,
    angle=rng.uniform(0, 2 * np.pi),
    period=rng.uniform(0.12, 0.3),
    amplitude=amplitude * rng.uniform(0.6, 1.0),
  )


def render_background(bg: Background, size: int) -> np.ndarray:
  """(size, size, 3) uint8 image of the background."""
  noise_hw = cv2.resize(
    bg.noise_gg.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
  )
  field_hw = 0.07 * noise_hw
  coords = (np.arange(size) + 0.5) / size
  along_hw = (
    np.cos(bg.angle) * coords[None, :] + np.sin(bg.angle) * coords[:, None]
  )
  if bg.pattern == "gradient":
    field_hw += bg.amplitude * 2 * (along_hw - 0.5)
  elif bg.pattern == "stripes":
    field_hw += bg.amplitude * np.sin(2 * np.pi * along_hw / bg.period)
  image = bg.base_rgb + field_hw[..., None] * bg.tint_rgb
  return np.clip(np.round(255 * image), 0, 255).astype(np.uint8)


def link_outline(obj: objects.ArticulatedObject, i: int) -> np.ndarray:
  """(K, 2) outline of link i in link-local (along, across) coordinates."""
  length, half = obj.length[i], obj.width[i] / 2
  if obj.shape[i] == objects.ROD:
    a = np.linspace(np.pi / 2, 3 * np.pi / 2, 7)
    tip = half * obj.taper[i]
    base_cap = np.stack([half * np.cos(a), half * np.sin(a)], -1)
    tip_cap = np.stack([length - tip * np.cos(a), -tip * np.sin(a)], -1)
    return np.concatenate([base_cap, tip_cap])
  if obj.shape[i] == objects.LEAF:
    s = np.linspace(0, 1, 13)
    v = half * np.sin(np.pi * s) ** 0.7
    return np.concatenate(
      [np.stack([s * length, v], -1), np.stack([s * length, -v], -1)[::-1]]
    )
  a = np.linspace(0, 2 * np.pi, 20, endpoint=False)
  # Ovals overhang their joints so that consecutive chain links overlap.
  semi = 0.575 * length
  return np.stack([length / 2 + semi * np.cos(a), half * np.sin(a)], -1)


def _fill(canvas, points_k2: np.ndarray, size: int, value) -> None:
  """Fills a polygon given in normalized units on a supersampled canvas."""
  scale = SUPERSAMPLE * size
  pixels = (points_k2 * scale - 0.5) * (1 << _SHIFT)
  pts = np.round(pixels).astype(np.int32)[None]
  cv2.fillPoly(canvas, pts, value, lineType=cv2.LINE_8, shift=_SHIFT)


def _shade(color) -> tuple[int, ...]:
  """Lighter (or, for light colours, darker) tone for a link's inner stripe."""
  c = np.asarray(color, np.float64)
  target = 255.0 if c.mean() < 128 else 0.0
  return tuple(int(round(x)) for x in c + 0.35 * (target - c))


def _draw_object(canvas, obj, angles_l, joints_l2, size, label: bool) -> None:
  """Draws one pose: back fixed parts, links in order, front fixed parts.

  With `label`, draws owner labels (link index + 1, _FIXED_LABEL) instead of
  colours.
  """
  parts = lambda front: [p for p in obj.fixed_parts if p.front == front]
  for part in parts(False):
    _fill(canvas, part.polygon_k2, size, _FIXED_LABEL if label else part.color)
  for i in range(obj.num_links):
    outline_k2 = link_outline(obj, i)
    world_k2 = simulate.to_world(angles_l[i], joints_l2[i], outline_k2)
    _fill(canvas, world_k2, size, i + 1 if label else obj.color_l3[i].tolist())
    if not label:  # A contrasting stripe gives flow estimators texture.
      inner_k2 = outline_k2 * [1.0, 0.4]
      world_k2 = simulate.to_world(angles_l[i], joints_l2[i], inner_k2)
      _fill(canvas, world_k2, size, _shade(obj.color_l3[i]))
  for part in parts(True):
    _fill(canvas, part.polygon_k2, size, _FIXED_LABEL if label else part.color)


def render_video(
  obj: objects.ArticulatedObject,
  bg: Background,
  angles_tl: np.ndarray,
  joints_tl2: np.ndarray,
  size: int,
) -> np.ndarray:
  """(T, size, size, 3) uint8 RGB frames of the given poses (normalized)."""
  big = SUPERSAMPLE * size
  backdrop = render_background(bg, big)
  frames = []
  for angles_l, joints_l2 in zip(angles_tl, joints_tl2):
    canvas = backdrop.copy()
    _draw_object(canvas, obj, angles_l, joints_l2, size, label=False)
    frames.append(
      cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    )
  return np.stack(frames)


def owner_map(
  obj: objects.ArticulatedObject,
  angles_l: np.ndarray,
  joints_l2: np.ndarray,
  size: int,
) -> np.ndarray:
  """(size, size) int32 owner of each pixel in one pose.

  A pixel belongs to the object when at least half of its supersamples do;
  its owner is the most frequent part among them: a link index, FIXED, or
  BACKGROUND.
  """
  big = SUPERSAMPLE * size
  labels = np.zeros((big, big), np.uint8)
  _draw_object(labels, obj, angles_l, joints_l2, size, label=True)
  blocks = labels.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE)
  blocks = blocks.transpose(0, 2, 1, 3).reshape(size, size, -1)
  codes = np.append(np.arange(1, obj.num_links + 1), _FIXED_LABEL)
  counts = (blocks[..., None] == codes).sum(axis=2)
  owner = np.argmax(counts, axis=-1).astype(np.int32)
  owner[owner == obj.num_links] = FIXED
  owner[counts.sum(-1) * 2 < SUPERSAMPLE**2] = BACKGROUND
  return owner


def exact_flow(
  owner_hw: np.ndarray,
  angles_tl: np.ndarray,
  joints_tl2: np.ndarray,
  target: int = -1,
) -> np.ndarray:
  """(S, S, 2) float32 flow frame 0 -> frame `target` from the kinematics.

  The material point at each link pixel's centre in frame 0 is carried
  rigidly with its owner link; fixed parts and background get 0. Pixels at
  S = owner_hw.shape[0], channels (u, v).
  """
  size = owner_hw.shape[0]
  flow_hw2 = np.zeros(owner_hw.shape + (2,), np.float32)
  for link in np.unique(owner_hw[owner_hw >= 0]):
    rows, cols = np.nonzero(owner_hw == link)
    start_k2 = (np.stack([cols, rows], -1) + 0.5) / size
    local_k2 = simulate.to_local(
      angles_tl[0, link], joints_tl2[0, link], start_k2
    )
    end_k2 = simulate.to_world(
      angles_tl[target, link], joints_tl2[target, link], local_k2
    )
    flow_hw2[rows, cols] = (end_k2 - start_k2) * size
  return flow_hw2
