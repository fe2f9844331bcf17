"""Procedural 2-D articulated objects at rest: plants, hanging chains, puppets.

Geometry is in normalized image units: the frame is the unit square, x to
the right and y down (so angle -pi/2 points up). An object is a tree of
rigid links; link i turns about its joint, which sits on the fixed base
(parent -1) or at a fraction `attach` along its parent's axis. Links are in
topological order (parent index < child index), which is also drawing order.
"""

import colorsys
import dataclasses

import numpy as np

PLANT, CHAIN, PUPPET = 0, 1, 2
KIND_NAMES = ("plant", "chain", "puppet")
ROD, LEAF, ELLIPSE = 0, 1, 2
J_MAX = 32  # Most links (joints) any object has.


@dataclasses.dataclass(frozen=True)
class FixedPart:
  """A part that never moves (pot, mount, torso)."""

  polygon_k2: np.ndarray  # (K, 2) vertices (x, y), normalized units.
  color: tuple[int, int, int]  # RGB.
  front: bool  # Drawn after the links (else before).


@dataclasses.dataclass(frozen=True)
class ArticulatedObject:
  """Links of one object at rest; all arrays have leading size L."""

  kind: int
  parent: np.ndarray  # (L,) int, -1 = joint on the fixed base.
  anchor_l2: np.ndarray  # (L, 2) joint of root links (x, y); NaN otherwise.
  attach: np.ndarray  # (L,) joint position as a fraction of parent length.
  rest_angle: np.ndarray  # (L,) radians; relative to parent, absolute if root.
  length: np.ndarray  # (L,) along the link's axis.
  width: np.ndarray  # (L,) at the joint end.
  taper: np.ndarray  # (L,) tip width / joint width (rods).
  shape: np.ndarray  # (L,) ROD, LEAF or ELLIPSE.
  color_l3: np.ndarray  # (L, 3) uint8 RGB.
  omega: np.ndarray  # (L,) joint natural frequency, radians per clip.
  zeta: np.ndarray  # (L,) joint damping ratio.
  fixed_parts: tuple[FixedPart, ...]

  @property
  def num_links(self) -> int:
    return len(self.parent)


class _Links:
  """Accumulates links while an object is generated."""

  def __init__(self, rng: np.random.Generator):
    self._rng = rng
    self.rows: list[dict] = []

  def add(
    self,
    parent,
    angle,
    length,
    width,
    shape,
    color,
    *,
    anchor=(np.nan, np.nan),
    attach=1.0,
    taper=1.0,
  ) -> int:
    """Appends a link (fields as in ArticulatedObject); returns its index."""
    rng = self._rng
    self.rows.append(
      dict(
        parent=parent,
        anchor=anchor,
        attach=attach,
        rest_angle=angle,
        length=length,
        width=width,
        taper=taper,
        shape=shape,
        color=color,
        omega=rng.uniform(1.0, 2.4),
        zeta=rng.uniform(0.1, 0.5),
      )
    )
    return len(self.rows) - 1

  def build(self, kind: int, fixed_parts) -> ArticulatedObject:
    if len(self.rows) > J_MAX:
      raise ValueError(f"{len(self.rows)} links > J_MAX={J_MAX}")
    col = lambda k, dt=np.float64: np.array([r[k] for r in self.rows], dt)
    return ArticulatedObject(
      kind=kind,
      parent=col("parent", np.int32),
      anchor_l2=col("anchor").reshape(-1, 2),
      attach=col("attach"),
      rest_angle=col("rest_angle"),
      length=col("length"),
      width=col("width"),
      taper=col("taper"),
      shape=col("shape", np.int32),
      color_l3=col("color", np.uint8).reshape(-1, 3),
      omega=col("omega"),
      zeta=col("zeta"),
      fixed_parts=tuple(fixed_parts),
    )


_LUMA = np.array([0.299, 0.587, 0.114])


def luma_color(hue: float, saturation: float, luma: float) -> np.ndarray:
  """(3,) RGB in [0, 1] with the given hue, ~saturation and exact luma.

  Luma (0.299 R + 0.587 G + 0.114 B) is what grayscale flow estimators see,
  so parts that move over each other get distinct lumas.
  """
  rgb = np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, 1.0))
  full = rgb @ _LUMA
  if luma <= full:
    return rgb * luma / full
  return rgb + (luma - full) / (1 - full) * (1 - rgb)


# Luma ranges of movable links on light / dark backgrounds, and of fixed
# parts, which sit between links and background.
LINK_LUMA = {True: (0.12, 0.35), False: (0.65, 0.92)}
FIXED_LUMA = (0.42, 0.55)


def random_color(rng, hue: float, luma_range) -> tuple[int, int, int]:
  """uint8 RGB near `hue` with luma drawn from `luma_range`."""
  h = hue + rng.uniform(-0.06, 0.06)
  rgb = luma_color(h, rng.uniform(0.45, 0.9), rng.uniform(*luma_range))
  return tuple(int(c) for c in np.round(255 * rgb))


def _box(cx, cy, w, h, top_scale=1.0) -> np.ndarray:
  """Trapezoid (top edge scaled by top_scale), vertices (x, y)."""
  t, b = w * top_scale / 2, w / 2
  return np.array(
    [[cx - t, cy - h / 2], [cx + t, cy - h / 2], [cx + b, cy + h / 2]]
    + [[cx - b, cy + h / 2]]
  )


def _plant_branch(links, rng, stem, side, palette) -> None:
  """A branch of 1-2 rods with a leaf, off stem link `stem`."""
  parent = links.add(
    stem,
    side * rng.uniform(0.5, 1.1),
    rng.uniform(0.07, 0.13),
    rng.uniform(0.02, 0.03),
    ROD,
    random_color(rng, *palette[0]),
    attach=rng.uniform(0.45, 1.0),
    taper=0.8,
  )
  for _ in range(rng.integers(0, 2)):
    parent = links.add(
      parent,
      rng.uniform(-0.3, 0.3),
      rng.uniform(0.06, 0.11),
      rng.uniform(0.018, 0.026),
      ROD,
      random_color(rng, *palette[0]),
      taper=0.8,
    )
  length = rng.uniform(0.11, 0.17)
  links.add(
    parent,
    side * rng.uniform(0.0, 0.4),
    length,
    length * rng.uniform(0.4, 0.6),
    LEAF,
    random_color(rng, *palette[1]),
  )


def make_plant(rng, palette) -> ArticulatedObject:
  """Potted plant: a stem of 3-5 links with leafy branches and a top leaf."""
  links = _Links(rng)
  x0, pot_top = rng.uniform(0.35, 0.65), rng.uniform(0.8, 0.87)
  pot_w, pot_h = rng.uniform(0.16, 0.26), rng.uniform(0.1, 0.14)
  pot = _box(x0, pot_top + pot_h / 2, pot_w * 0.75, pot_h, 1 / 0.75)
  n_stem = int(rng.integers(3, 6))
  height, w0 = rng.uniform(0.5, 0.66), rng.uniform(0.045, 0.06)
  stem = -1
  for i in range(n_stem):
    stem = links.add(
      stem,
      (-np.pi / 2 if i == 0 else 0.0) + rng.uniform(-0.18, 0.18),
      height / n_stem * rng.uniform(0.85, 1.15),
      w0 * (1 - 0.4 * i / n_stem),
      ROD,
      random_color(rng, *palette[0]),
      anchor=(x0, pot_top + 0.02) if i == 0 else (np.nan, np.nan),
      taper=1 - 0.4 / n_stem,
    )
    side = rng.choice([-1.0, 1.0])
    for _ in range(int(rng.integers(0, 3)) if i > 0 else 0):
      _plant_branch(links, rng, stem, side, palette)
      side = -side
  length = rng.uniform(0.11, 0.17)
  links.add(
    stem,
    rng.uniform(-0.3, 0.3),
    length,
    length * rng.uniform(0.4, 0.6),
    LEAF,
    random_color(rng, *palette[1]),
  )
  pot_color = random_color(rng, *palette[2])
  return links.build(PLANT, [FixedPart(pot, pot_color, True)])


def make_chain(rng, palette) -> ArticulatedObject:
  """Chain of 4-8 oval links hanging from a fixed mount, maybe with a bob."""
  links = _Links(rng)
  x0, y0 = rng.uniform(0.3, 0.7), rng.uniform(0.06, 0.14)
  mount = _box(x0, y0, rng.uniform(0.2, 0.3), rng.uniform(0.03, 0.05))
  n = int(rng.integers(4, 9))
  seg, width = rng.uniform(0.55, 0.75) / n, rng.uniform(0.06, 0.09)
  colors = [random_color(rng, *palette[i]) for i in (0, 1)]
  parent = -1
  for i in range(n):
    parent = links.add(
      parent,
      (np.pi / 2 if i == 0 else 0.0) + rng.uniform(-0.15, 0.15),
      seg,
      width,
      ELLIPSE,
      colors[i % 2],
      anchor=(x0, y0) if i == 0 else (np.nan, np.nan),
    )
  if rng.random() < 0.7:
    size = rng.uniform(0.09, 0.14)
    color = random_color(rng, *palette[1])
    links.add(parent, 0.0, size, size * rng.uniform(0.7, 1.0), ELLIPSE, color)
  mount_color = random_color(rng, *palette[2])
  return links.build(CHAIN, [FixedPart(mount, mount_color, True)])


def _limb(links, rng, anchor, angle, size, color, n_seg) -> None:
  """Rod segments from a torso anchor; `size` = (length, width) of the first."""
  parent, (length, width) = -1, size
  for i in range(n_seg):
    parent = links.add(
      parent,
      angle if i == 0 else rng.uniform(-0.4, 0.4),
      length * (1.0 if i == 0 else rng.uniform(0.8, 1.0)),
      width * (1.0 if i == 0 else 0.85),
      ROD,
      color,
      anchor=anchor if i == 0 else (np.nan, np.nan),
      taper=0.85,
    )


def make_puppet(rng, palette) -> ArticulatedObject:
  """Fixed torso with a head, two 2-link arms and two 2-link legs."""
  links = _Links(rng)
  cx, cy = rng.uniform(0.4, 0.6), rng.uniform(0.42, 0.5)
  tw, th = rng.uniform(0.16, 0.24), rng.uniform(0.26, 0.32)
  torso = _box(cx, cy, tw, th, rng.uniform(1.0, 1.3))
  head = rng.uniform(0.14, 0.18)
  links.add(
    -1,
    -np.pi / 2 + rng.uniform(-0.15, 0.15),
    head,
    head * rng.uniform(0.7, 0.9),
    ELLIPSE,
    random_color(rng, *palette[1]),
    anchor=(cx, cy - th / 2 + 0.01),
  )
  arm = (rng.uniform(0.13, 0.17), rng.uniform(0.055, 0.07))
  leg = (rng.uniform(0.14, 0.18), rng.uniform(0.065, 0.08))
  limb_color = random_color(rng, *palette[0])
  for side in (-1.0, 1.0):
    shoulder = (cx + side * (tw / 2 - 0.01), cy - th / 2 + 0.03)
    spread = np.pi / 2 - side * rng.uniform(0.25, 0.9)
    _limb(links, rng, shoulder, spread, arm, limb_color, 2)
  for side in (-1.0, 1.0):
    hip = (cx + side * tw / 4, cy + th / 2 - 0.02)
    spread = np.pi / 2 - side * rng.uniform(0.05, 0.35)
    _limb(links, rng, hip, spread, leg, limb_color, 2)
  torso_color = random_color(rng, *palette[2])
  return links.build(PUPPET, [FixedPart(torso, torso_color, False)])


MAKERS = {PLANT: make_plant, CHAIN: make_chain, PUPPET: make_puppet}


def make_object(
  rng: np.random.Generator, light_background: bool
) -> ArticulatedObject:
  """A random object of a random kind (uniform over PLANT, CHAIN, PUPPET)."""
  kind = int(rng.integers(len(MAKERS)))
  hue, link_luma = rng.random(), LINK_LUMA[light_background]
  palette = (
    (hue, link_luma),
    (hue + rng.uniform(0.1, 0.3), link_luma),
    (hue + 0.5, FIXED_LUMA),
  )
  return MAKERS[kind](rng, palette)
