"""The model held in memory, compiled for fixed batch sizes.

Every call is padded up to one of `batch_sizes`, so nothing compiles while
serving once `warm_up` has run. The heat map of "what moves with this
pixel" is one batch of random pokes at that pixel.
"""

import dataclasses
import time

import cv2
import jax
import numpy as np

from flow import estimators
from ii2v_jax.io import checkpoint
from ii2v_jax.models import inference

BATCH_SIZES = (1, 4, 16)
# Random heat-map shoves: a fraction of the model side, at every angle.
HEAT_SHOVE = (0.05, 0.15)
CHANGE = 8  # uint8 levels: smaller colour changes are not motion.


@dataclasses.dataclass
class ModelInfo:
  workdir: str
  step: int
  resolution: int
  num_frames: int
  poke_size: int
  max_pokes: int
  parameters: int


class Engine:
  """Runs the rollout on uint8 frames and poke maps, padded to a bucket."""

  def __init__(
    self, config, graphdef, params, *, step=0, workdir="", batch_sizes=()
  ):
    self.config = config
    self.params = params
    self.batch_sizes = tuple(sorted(set(int(b) for b in batch_sizes)))
    if not self.batch_sizes or self.batch_sizes[0] < 1:
      raise ValueError(f"batch sizes must be >= 1, got {batch_sizes}")
    self.info = ModelInfo(
      workdir=str(workdir),
      step=int(step),
      resolution=int(config.data.resolution),
      num_frames=int(config.data.num_frames),
      poke_size=int(config.data.poke_size),
      max_pokes=int(config.data.get("max_pokes", 1)),
      parameters=sum(int(np.size(x)) for x in jax.tree.leaves(params)),
    )
    self._rollout = inference.make_uint8_rollout_fn(
      graphdef, self.info.num_frames
    )

  @classmethod
  def load(cls, workdir: str, batch_sizes=BATCH_SIZES) -> "Engine":
    """The newest checkpoint of a workdir."""
    config, graphdef, params, step = checkpoint.load_model(workdir)
    return cls(
      config,
      graphdef,
      params,
      step=step,
      workdir=workdir,
      batch_sizes=batch_sizes,
    )

  @property
  def max_batch(self) -> int:
    return self.batch_sizes[-1]

  def bucket(self, n: int) -> int:
    """The smallest batch size that holds n rows."""
    return next(b for b in self.batch_sizes if b >= n)

  def warm_up(self) -> float:
    """Compiles (or loads from the persistent cache) every bucket."""
    t0 = time.perf_counter()
    s = self.info.resolution
    for b in self.batch_sizes:
      x0 = np.zeros((b, s, s, 3), np.uint8)
      pk = np.zeros((b, s, s, 2), np.float32)
      jax.block_until_ready(self._rollout(self.params, x0, pk))
    return time.perf_counter() - t0

  def run(self, x0_nhw3: np.ndarray, poke_nhw2: np.ndarray) -> np.ndarray:
    """(N,S,S,3) uint8 and (N,S,S,2) -> (N,T,S,S,3) uint8, N <= max."""
    n = len(x0_nhw3)
    b = self.bucket(n)
    if b > n:  # Pad with copies of the first row; their output is dropped.
      x0_nhw3 = np.concatenate([x0_nhw3, np.repeat(x0_nhw3[:1], b - n, 0)])
      poke_nhw2 = np.concatenate(
        [poke_nhw2, np.repeat(poke_nhw2[:1], b - n, 0)]
      )
    video = self._rollout(self.params, x0_nhw3, poke_nhw2.astype(np.float32))
    return np.asarray(video)[:n]


def heat_pokes(row: int, col: int, info: ModelInfo, count: int, seed=0):
  """`count` (S,S,2) poke maps at (row, col), random angle and length."""
  rng = np.random.default_rng(seed)
  s, half = info.resolution, info.poke_size // 2
  angle = rng.uniform(0, 2 * np.pi, count)
  length = rng.uniform(*HEAT_SHOVE, count) * s
  maps = np.zeros((count, s, s, 2), np.float32)
  patch = (slice(row - half, row + half + 1), slice(col - half, col + half + 1))
  vectors = np.stack([np.cos(angle), np.sin(angle)], -1) * length[:, None]
  for i in range(count):
    maps[i][patch] = vectors[i]
  return maps


def motion_heat(x0_hw3: np.ndarray, videos_nthw3: np.ndarray) -> np.ndarray:
  """How far each pixel of x0 moves by the last frame, mean over pokes.

  DIS flow x0 -> x_T, kept only near pixels whose colour changes in some
  frame (by more than CHANGE levels): on flat, static background DIS
  reports small spurious motion, and a pixel that never changes colour
  did not visibly move.

  Returns (S, S) float32 in pixels of the model grid.
  """
  last = videos_nthw3[:, -1]
  first = np.repeat(x0_hw3[None], len(last), axis=0)
  flows = estimators.dis_flow(first, last, preset="medium", min_size=128)
  near = np.ones((5, 5), np.uint8)
  heat = np.zeros(x0_hw3.shape[:2], np.float32)
  for flow, video in zip(flows, videos_nthw3):
    diff = np.abs(video.astype(np.int16) - x0_hw3).max(axis=(0, 3))
    moved = cv2.dilate((diff > CHANGE).astype(np.uint8), near) > 0
    heat += np.hypot(flow[..., 0], flow[..., 1]) * moved
  return heat / len(flows)
