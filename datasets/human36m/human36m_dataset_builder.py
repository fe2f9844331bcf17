"""TFDS builder of Human3.6M (REFERENCE.md 8.1, 8.2, 8.6, 11.4).

Videos `S<k>/Videos/<Action>[ <n>].<camera>.mp4` as the official
`Videos_S<k>.tgz` unpack; object_id = subject number k. Official split:
subjects 9 and 11 test, all others train. Every 8th frame of the 50 fps
videos is kept (frames_discr 8: 6.25 fps), 11 kept frames per clip. The
`_ALL` videos (all actions concatenated) are left out, as the usual
preprocessing scripts do. No foreground masks (the reference does not
filter H36m pokes).

Poke horizon: the reference's H36m poke comes from the flow x_0 -> x_{T/2}
(half the clip, a quirk, REFERENCE.md 8.6). We store the fixed flow
x_0 -> x_T by default, like every other dataset; `half_horizon=True`
(build flag `--flow_target 5`) stores x_0 -> x_5 for parity. Its other
parts (poke weights, target crops) are training-side.
"""

import pathlib
import re

from datasets.video_common import builder, clips, splits
from flow import video_io

TEST_SUBJECTS = (9, 11)
SUBJECT = re.compile(r"S(\d+)$")


def subject(name: str) -> int | None:
  """Subject k of 'S<k>/Videos/Walking 1.54138969' (None: no S<k> part)."""
  for part in reversed(name.split("/")[:-1]):
    match = SUBJECT.match(part)
    if match:
      return int(match[1])
  return None


class Builder(builder.ManualVideoBuilder):
  """Human3.6M clips, subjects 9 and 11 held out."""

  DEFAULT_SPEC = clips.ClipSpec(frame_spacing=8, aspect="squash")
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Human3.6M: register at http://vision.imar.ro/human3.6m (the account must
  be approved by hand, which can take days or never happen for non-academic
  addresses). Then download `Videos_S{1,5,6,7,8,9,11}.tgz` (the reference's
  data/human36m_preprocess.py does it with the site's PHPSESSID cookie)
  and unpack them all into the manual directory:

    <manual_dir>/S1/Videos/Directions 1.54138969.mp4   (1000x1002, 50 fps)
    <manual_dir>/S1/Videos/Walking.60457274.mp4 ...
    ...
    <manual_dir>/S11/Videos/...

  `_ALL*` videos are ignored. Frames are squashed to a square like the
  reference (`--aspect squash` is the default here).
  """

  @classmethod
  def make_config(cls, resolution=64, *, half_horizon=False, **settings):
    """`half_horizon`: the reference's poke quirk, flow x_0 -> x_{T/2}."""
    if half_horizon:
      frames = settings.get("num_frames", cls.DEFAULT_SPEC.num_frames)
      settings["flow_target"] = (frames - 1) // 2
    return super().make_config(resolution, **settings)

  def plan(self, root: pathlib.Path) -> builder.Plan:
    jobs, problems = {s: [] for s in splits.SPLITS}, {}
    for i, source in enumerate(video_io.discover(root)):
      k = subject(source.name)
      if source.name.rsplit("/", 1)[-1].startswith("_ALL"):
        problems[source.name] = "_ALL video (all actions concatenated)"
      elif k is None:
        problems[source.name] = "not below an S<k> folder"
      else:
        split = "test" if k in TEST_SUBJECTS else "train"
        jobs[split].append(clips.VideoJob(source, i, k))
    return builder.Plan(jobs, problems)
