"""What a build did: clips and videos per split, skipped files and why."""

import dataclasses
import pathlib


class EmptySplitError(ValueError):
  """A split got no clip (no videos, or every one skipped)."""


def empty_split_message(split: str, num_videos: int) -> str:
  """One line: why `split` is empty and what to do."""
  if not num_videos:
    return (
      f"the {split} split has no videos: add videos, or with one video use "
      "--split_by_time (its first 80 % trains, the rest tests)"
    )
  return (
    f"the {split} split got no clips: all {num_videos} of its videos were "
    "skipped (reasons above); fix or replace them, or lower --num_frames / "
    "--frame_spacing for short videos"
  )


@dataclasses.dataclass
class BuildReport:
  """Counts and skip reasons, filled while the splits are generated.

  skipped: (split, path, reason) of every input left out: unreadable,
  corrupt, truncated or too short, or listed wrongly in a split file.
  """

  videos: dict = dataclasses.field(default_factory=dict)
  clips: dict = dataclasses.field(default_factory=dict)
  cut_clips: dict = dataclasses.field(default_factory=dict)  # Scene cuts.
  skipped: list = dataclasses.field(default_factory=list)
  frames_decoded: int = 0
  video_seconds: float = 0.0  # Summed over workers.

  def add(
    self,
    split: str,
    num_clips: int,
    frames: int,
    seconds: float,
    cut_clips: int = 0,
  ):
    """Records one video that gave `num_clips` clips (and left out
    `cut_clips` that span a scene cut)."""
    self.videos[split] = self.videos.get(split, 0) + 1
    self.clips[split] = self.clips.get(split, 0) + num_clips
    if cut_clips:
      self.cut_clips[split] = self.cut_clips.get(split, 0) + cut_clips
    self.frames_decoded += frames
    self.video_seconds += seconds

  def skip(self, split: str, path: str, reason: str) -> None:
    self.skipped.append((split, str(path), reason))

  def to_json(self) -> dict:
    """For the dataset's metadata.json."""
    return {
      "videos": dict(self.videos),
      "clips": dict(self.clips),
      "scene_cut_clips": dict(self.cut_clips),
      "skipped": [
        {"split": s, "path": p, "reason": r} for s, p, r in self.skipped
      ],
    }

  def format(self) -> str:
    """Multi-line summary: per-split counts, then each skipped input."""
    lines = [
      f"{split}: {self.clips.get(split, 0)} clips from "
      f"{self.videos.get(split, 0)} videos"
      + (
        f" ({self.cut_clips[split]} clips across scene cuts left out)"
        if self.cut_clips.get(split)
        else ""
      )
      for split in sorted(set(self.videos) | set(self.clips), reverse=True)
    ]
    if not self.skipped:
      return "\n".join(lines + ["skipped: none"])
    lines.append(f"skipped: {len(self.skipped)}")
    for split, path, reason in self.skipped:
      lines.append(f"  [{split}] {path}: {reason}")
    return "\n".join(lines)


def disk_usage(path) -> int:
  """Bytes of all files under `path`."""
  files = pathlib.Path(path).rglob("*")
  return sum(f.stat().st_size for f in files if f.is_file())
