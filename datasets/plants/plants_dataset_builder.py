"""TFDS builder of Poking Plants (REFERENCE.md 8.1, 8.2).

Every `VID_<plant>_<n>.mkv` below the manual directory is one video of
plant <plant> (its object_id). Splits are temporal, as the reference's
(every split mode but "videos"): the first 80 % of each video's frames
train, the last 20 % test. Clips keep every 2nd frame (frames_discr 1 x
subsample step 2): the flow x_0 -> x_T spans 20 raw frames, the stored
lag the reference pokes with for T = 10. No foreground masks (the
reference does not filter PP pokes). Plant 8 is left out by default
(`exclude_object_8`), and `VID_0_3_1024x1024` always, as the reference.
"""

import pathlib
import re

from datasets.video_common import builder, clips, splits
from flow import video_io

NAME = re.compile(r"VID_(\d+)_(\d+)")
ALWAYS_EXCLUDED = {"VID_0_3_1024x1024": "excluded by the reference"}
TRAIN_FRACTION = 0.8


def plant_id(name: str) -> int | None:
  """Plant number of a video name ('x/VID_3_12' -> 3); None if unnamed."""
  match = NAME.match(name.rsplit("/", 1)[-1])
  return int(match.group(1)) if match else None


class Builder(builder.ManualVideoBuilder):
  """Poking Plants clips (temporal 80 / 20 split per video)."""

  # Squash like the reference: phone videos need not be square.
  DEFAULT_SPEC = clips.ClipSpec(frame_spacing=2, aspect="squash")
  OPTIONS = {"exclude_object_8": True}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Poking Plants is linked from the II2V project page
  (https://bit.ly/3xdSpPn -> https://heibox.uni-heidelberg.de, the
  authors' seafile) as a multi-part zip of .mkv videos; unpack all parts
  together (`7z x poking_plants.zip` or `zip -s 0 ... --out full.zip`
  then unzip). If the link is dead, ask the authors (CompVis, Heidelberg).
  The manual directory holds the unpacked videos, at any depth:

    <manual_dir>/**/VID_<plant>_<n>.mkv     e.g. VID_3_12.mkv

  Files not named VID_<plant>_<n> are reported and left out.
  """

  def plan(self, root: pathlib.Path) -> builder.Plan:
    exclude_8 = self.builder_config.options["exclude_object_8"]
    kept, problems = [], {}
    for source in video_io.discover(root):
      stem = source.name.rsplit("/", 1)[-1]
      plant = plant_id(source.name)
      if plant is None:
        problems[source.name] = "not named VID_<plant>_<n>"
      elif stem in ALWAYS_EXCLUDED:
        problems[source.name] = ALWAYS_EXCLUDED[stem]
      elif plant == 8 and exclude_8:
        problems[source.name] = "plant 8 excluded (exclude_object_8)"
      else:
        kept.append((source, plant))
    spans = splits.time_spans(TRAIN_FRACTION)
    jobs = {
      split: [
        clips.VideoJob(source, i, plant, span=spans[split])
        for i, (source, plant) in enumerate(kept)
      ]
      for split in splits.SPLITS
    }
    return builder.Plan(jobs, problems)
