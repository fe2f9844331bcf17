"""Shared machinery of the real-footage dataset builders.

A builder lists its videos as `VideoJob`s per split and yields
`runner.generate_examples(jobs, spec, split=..., report=...)` from its
`_generate_examples`; every clip then follows the shared feature spec
(`datasets.features`) and unreadable inputs land in the `BuildReport`.

  builder  ManualVideoBuilder: 64 / 128 configs, options, plan -> splits
  frames   square crop / squash, the reference's resizes of frames and flow
  masks    GrabCut foreground masks for poke sampling (the reference's)
  clips    ClipSpec, VideoJob, video_examples (decode, sample, flow)
  cuts     scene cuts between a clip's frames (clips spanning one dropped)
  probe    frame counts and ffmpeg's reason for an unreadable file
  splits   videos into train / test: by ratio, by file lists, by time
  runner   worker processes in job order, progress bars, skip reporting
  report   BuildReport (counts, skipped inputs and reasons), disk_usage
  cli      flags shared by the builders' build.py, the end-of-build summary,
           build_manual / main_manual for ManualVideoBuilder datasets
"""

from datasets.video_common.clips import (
  ClipSpec,
  VideoJob,
  VideoResult,
  video_examples,
)
from datasets.video_common.probe import count_frames, why_unreadable
from datasets.video_common.report import BuildReport, disk_usage
from datasets.video_common.runner import generate_examples, ordered_map
from flow.video_io import BadInputError, Source, discover

__all__ = [
  "BadInputError",
  "BuildReport",
  "ClipSpec",
  "Source",
  "VideoJob",
  "VideoResult",
  "count_frames",
  "discover",
  "disk_usage",
  "generate_examples",
  "ordered_map",
  "video_examples",
  "why_unreadable",
]
