"""TFDS builder of TaiChi-HD, as the first-order-motion-model scripts
produce it (REFERENCE.md 8.1, 8.2): the official train / test folders.

Clips keep every 2nd frame (the reference's frames_discr 1 x subsample
step 2), so the stored flow x_0 -> x_T spans 20 raw frames, its stored lag
for T = 10. Foreground masks: GrabCut on x_0 (the reference filters pokes
with it). object_id: the YouTube id before the first '#' of a clip's name.
"""

import pathlib

from datasets.video_common import builder, clips, splits
from flow import video_io


def youtube_id(name: str) -> str:
  """'train/-_6MzUd2_aE#000100#000356' -> '-_6MzUd2_aE'."""
  return name.split("/", 1)[-1].split("#", 1)[0]


class Builder(builder.ManualVideoBuilder):
  """TaiChi-HD clips, first -> last frame flow, GrabCut foreground."""

  DEFAULT_SPEC = clips.ClipSpec(frame_spacing=2, fg_mask="grabcut")
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  TaiChi-HD is not downloadable as a file: it is cut from YouTube videos by
  the scripts of https://github.com/AliaksandrSiarohin/first-order-model
  (data/taichi-loading): `python load_videos.py --metadata
  taichi-metadata.csv --format .mp4 --out_folder taichi --workers 8`
  (needs youtube-dl / yt-dlp and ffmpeg). Many YouTube videos have
  disappeared since 2019, so a fresh download has fewer clips than the
  paper's (about 3k train / 285 test); ask the FOMM authors for the crops
  if you need the full set. The manual directory is the output folder:

    <manual_dir>/train/<ytid>#<start>#<end>.mp4   256x256 clips
    <manual_dir>/test/<ytid>#<start>#<end>.mp4
  (`--format .png` gives folders of frames train/<clip>/0000000.png ...
  instead; both are read.)
  """

  def plan(self, root: pathlib.Path) -> builder.Plan:
    missing = [s for s in splits.SPLITS if not (root / s).is_dir()]
    if missing:
      raise FileNotFoundError(f"no {'/'.join(missing)} folder in {root}")
    found = {s: video_io.discover(root / s) for s in splits.SPLITS}
    names = {s: [f"{s}/{v.name}" for v in found[s]] for s in splits.SPLITS}
    every = names["train"] + names["test"]
    people = sorted({youtube_id(n) for n in every})
    objects = {p: i for i, p in enumerate(people)}
    ids = {n: i for i, n in enumerate(every)}
    jobs = {
      s: [
        clips.VideoJob(
          video_io.Source(n, v.path, v.kind), ids[n], objects[youtube_id(n)]
        )
        for n, v in zip(names[s], found[s])
      ]
      for s in splits.SPLITS
    }
    return builder.Plan(jobs, meta=dict(object_names=people))
