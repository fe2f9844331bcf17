"""TFDS builder of iPER (REFERENCE.md 8.1, 8.2, 11.3).

Videos `AAA_B_C.mp4` (actor, outfit, action) of iPER_1024_video_release;
object_id = 100 x actor + outfit. Official split: the videos listed in
train.txt train, every other video tests (the reference ignores
val.txt; we only check it against the test set in metadata.json).

Frame spacing 1: the shipped iper.yaml's frames_discr 8 makes the stored
flow lag 80 raw frames, which fails the reference's own T x ss = 10
assertion (REFERENCE.md 11.3); iPOKE fixed it to 1, so clips are 11
consecutive frames and the flow spans 10 raw frames (1/3 s at 30 fps).
Foreground masks: GrabCut on x_0 (the reference filters iPER pokes).
"""

import pathlib
import re

from datasets.video_common import builder, clips, splits
from flow import video_io

RELEASE = "iPER_1024_video_release"
NAME = re.compile(r"(\d+)_(\d+)_(\d+)$")


def entry(line: str) -> str:
  """A train.txt entry as a video stem: '001/1/2' or '001_1_2.mp4' ->
  '001_1_2'."""
  return splits.entry_name(line).replace("/", "_")


def object_id(stem: str) -> int | None:
  match = NAME.match(stem)
  return 100 * int(match[1]) + int(match[2]) if match else None


class Builder(builder.ManualVideoBuilder):
  """iPER clips, official train.txt split, GrabCut foreground."""

  DEFAULT_SPEC = clips.ClipSpec(fg_mask="grabcut")
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  iPER: https://svip-lab.github.io/dataset/iPER_dataset.html links a
  OneDrive / Baidu folder (a Microsoft account may be asked for; the old
  direct links are dead). Download iPER_1024_video_release.zip and the
  split files train.txt and val.txt, and unzip beside them:

    <manual_dir>/iPER_1024_video_release/001_1_1.mp4 ...  (1024x1024)
    <manual_dir>/train.txt      one video per line: 001/1/1 or 001_1_1
    <manual_dir>/val.txt        (optional)

  (The reference reads train.txt from the parent of the video folder.)
  """

  def plan(self, root: pathlib.Path) -> builder.Plan:
    videos, lists = root / RELEASE, root / "train.txt"
    for path in (videos, lists):
      if not path.exists():
        raise FileNotFoundError(f"{path} not found (see the instructions)")
    found = video_io.discover(videos)
    problems = {
      s.name: "not named AAA_B_C" for s in found if object_id(s.name) is None
    }
    found = [s for s in found if s.name not in problems]
    listed = [entry(line) for line in splits.read_list(lists)]
    chosen, missing = splits.list_split(
      [s.name for s in found], {"train": listed}
    )
    problems |= missing
    val = root / "val.txt"
    val_names = (
      [entry(x) for x in splits.read_list(val)] if val.exists() else []
    )
    jobs = {
      split: [
        clips.VideoJob(s, i, object_id(s.name))
        for i, s in enumerate(found)
        if s.name in set(chosen[split])
      ]
      for split in splits.SPLITS
    }
    meta = dict(val_not_in_test=sorted(set(val_names) - set(chosen["test"])))
    return builder.Plan(jobs, problems, meta)
