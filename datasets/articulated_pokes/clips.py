"""One example of the articulated-pokes dataset, a pure function of its id.

Example `index` of split `split` draws all its randomness from
`np.random.default_rng([BASE_SEED, SPLITS.index(split), index])`, so a build
is identical every time and independent of sharding and order. The scene
(object, background, poke, motion) is drawn in normalized units and does not
depend on the resolution; only the pixel nearest the poke does.
"""

import dataclasses

import numpy as np

import flow
from datasets.articulated_pokes import objects, render, simulate

BASE_SEED = 2021_0619
SPLITS = ("train", "test")
NUM_FRAMES = 11
# Frame-0 -> frame-T motion of the poked point, pixels at 64 x 64.
POKE_RANGE_PX64 = (3.0, 12.0)
# Estimator settings of the stored `flow` (DIS through every frame, composed)
# and `pair_flow` (DIS x_0 -> x_T directly); the most accurate of each kind
# on this data (python -m datasets.articulated_pokes.evaluate_flow). Thin
# parts move several times their width over a clip, which a direct pair
# estimate loses, so the trainer's `flow` is the chained estimate.
PAIR_FLOW_KWARGS = dict(method="dis", preset="medium", min_size=256)
CHAINED_FLOW_KWARGS = dict(method="dis", preset="fast", min_size=256)


def flow_settings(
  method: str = "dis", options: dict | None = None
) -> tuple[dict, dict]:
  """`estimate_*` keywords of the stored (`flow`, `pair_flow`).

  DIS without options gives the tuned defaults above; any other choice
  applies `options` (e.g. RAFT's weights, variant, iters) to both, with
  the same upscaling of small frames (min_size 256) unless overridden.
  """
  if method == "dis" and not options:
    return CHAINED_FLOW_KWARGS, PAIR_FLOW_KWARGS
  kwargs = dict(method=method, min_size=256, **(options or {}))
  return kwargs, kwargs


@dataclasses.dataclass(frozen=True)
class Scene:
  """Everything drawn at random for one clip (normalized units)."""

  obj: objects.ArticulatedObject
  background: render.Background
  link: int  # Poked link.
  local_2: np.ndarray  # Poked material point in link coordinates.
  impulse_2: np.ndarray  # (2,) impulse, simulation units.
  theta_tl: np.ndarray  # (T + 1, L) joint deflections, radians.


def scene_rng(split: str, index: int) -> np.random.Generator:
  """The generator example `index` of `split` draws everything from."""
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
  if index < 0:
    raise ValueError(f"index must be >= 0, got {index}")
  return np.random.default_rng([BASE_SEED, SPLITS.index(split), index])


def make_scene(split: str, index: int, num_frames: int = NUM_FRAMES) -> Scene:
  """Draws the object, background and poke, and simulates the clip."""
  if num_frames < 2:
    raise ValueError(f"num_frames must be >= 2, got {num_frames}")
  rng = scene_rng(split, index)
  light_background = rng.random() < 0.7
  obj = objects.make_object(rng, light_background)
  background = render.make_background(rng, light_background)
  link, local_2, direction_2 = simulate.sample_poke_site(rng, obj)
  target = rng.uniform(*POKE_RANGE_PX64) / 64
  impulse_2, theta_tl = simulate.scaled_poke(
    obj, link, local_2, direction_2, target, num_frames
  )
  return Scene(obj, background, link, local_2, impulse_2, theta_tl)


def render_frame(
  split: str,
  index: int,
  size: int,
  *,
  frame: int = 0,
  num_frames: int = NUM_FRAMES,
) -> np.ndarray:
  """(size, size, 3) uint8 RGB frame `frame` of an example, at any size."""
  scene = make_scene(split, index, num_frames)
  angles_tl, joints_tl2 = simulate.forward_kinematics(
    scene.obj, scene.theta_tl[frame : frame + 1]
  )
  return render.render_video(
    scene.obj, scene.background, angles_tl, joints_tl2, size
  )[0]


def _poke_pixel(scene: Scene, owner_hw: np.ndarray) -> np.ndarray:
  """(row, col) nearest the poked point among its link's pixels at rest.

  Falls back to any movable-link pixel when the link is hidden at this size.
  """
  size = owner_hw.shape[0]
  point_2 = simulate.point_track(
    scene.obj, scene.theta_tl[:1], scene.link, scene.local_2
  )[0]
  col, row = point_2 * size - 0.5
  candidates = owner_hw == scene.link
  if not candidates.any():
    candidates = owner_hw >= 0
  rows, cols = np.nonzero(candidates)
  best = np.argmin((rows - row) ** 2 + (cols - col) ** 2)
  return np.array([rows[best], cols[best]], np.int32)


def _padded_joints(joints_tl2: np.ndarray, size: int) -> np.ndarray:
  """(T + 1, J_MAX, 2) joint pixels (x, y) at `size`, padded with -1."""
  padded = np.full(
    (joints_tl2.shape[0], objects.J_MAX, 2), -1.0, dtype=np.float32
  )
  padded[:, : joints_tl2.shape[1]] = joints_tl2 * size - 0.5
  return padded


def make_clip(
  split: str,
  index: int,
  *,
  resolution: int = 64,
  num_frames: int = NUM_FRAMES,
  estimate_flow: bool = True,
  flow_method: str = "dis",
  flow_options: dict | None = None,
) -> dict[str, np.ndarray]:
  """All features of one example (see the builder for their meaning).

  Args:
    split: "train" or "test".
    index: example index within the split.
    resolution: frame size S in pixels.
    num_frames: T + 1.
    estimate_flow: also estimate `flow` (chained) and `pair_flow`.
    flow_method, flow_options: the estimator, see `flow_settings`.
  """
  scene = make_scene(split, index, num_frames)
  obj = scene.obj
  angles_tl, joints_tl2 = simulate.forward_kinematics(obj, scene.theta_tl)
  video = render.render_video(
    obj, scene.background, angles_tl, joints_tl2, resolution
  )
  owner_hw = render.owner_map(obj, angles_tl[0], joints_tl2[0], resolution)
  gt_flow = render.exact_flow(owner_hw, angles_tl, joints_tl2)
  poke_pixel = _poke_pixel(scene, owner_hw)
  clip = {
    "video": video,
    "gt_flow": gt_flow,
    "fg_mask": (owner_hw != render.BACKGROUND).astype(np.uint8),
    "poke_pixel": poke_pixel,
    "poke_displacement": gt_flow[poke_pixel[0], poke_pixel[1]].copy(),
    "poke_impulse": scene.impulse_2.astype(np.float32),
    "joints": _padded_joints(joints_tl2, resolution),
    "num_joints": np.int32(obj.num_links),
    "video_id": np.int32(index),
    "start_frame": np.int32(0),
    "object_id": np.int32(obj.kind),
  }
  if estimate_flow:
    chained_kw, pair_kw = flow_settings(flow_method, flow_options)
    clip["flow"] = flow.estimate_chained_flow(video, **chained_kw)
    clip["pair_flow"] = flow.estimate_flow(video[0], video[-1], **pair_kw)
  return clip
