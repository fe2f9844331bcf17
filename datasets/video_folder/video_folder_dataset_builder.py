"""TFDS builder over any folder of videos or frame folders.

Configs "64" (default) and "128" read the manual directory
(`<data_dir>/downloads/manual/`, or `download_config.manual_dir`);
`make_config(...)` makes configs for a given source directory, clip
length, frame spacing, split or flow estimator. Every clip has the shared
features of `datasets.features`; see datasets/README.md. Read the build
with `tfds.builder_from_directory(...).as_data_source()` (no TensorFlow).
"""

import dataclasses
import pathlib
import re

import tensorflow_datasets as tfds

from datasets.video_common import builder, clips, splits
from flow import video_io

RESOLUTIONS = (64, 128)
# Footage of any kind: clips spanning a scene cut are left out.
DEFAULT_SPEC = clips.ClipSpec(drop_scene_cuts=True)
SPLIT_MODES = ("video", "time", "files")
SPLIT_FILES = {s: f"{s}.txt" for s in splits.SPLITS}


@dataclasses.dataclass(eq=False)
class VideoFolderConfig(tfds.core.BuilderConfig):
  """Source, clip spec and split of a build.

  split: "video" puts whole videos in train / test (about split_ratio in
  train, by a seeded hash of their names); "time" puts the first
  split_ratio of every video's frames in train and the rest in test (the
  reference's per-video 80/20); "files" reads train.txt / test.txt in the
  source directory (one video path per line; with one file, the other
  split gets every unlisted video).
  """

  source_dir: str | None = None
  spec: clips.ClipSpec = dataclasses.field(default_factory=lambda: DEFAULT_SPEC)
  split: str = "video"
  split_ratio: float = 0.8
  split_seed: int = 0


def _split_suffix(split: str, ratio: float, seed: int) -> str:
  if split == "files":
    return "_files"
  suffix = "" if split == "video" else f"_{split}"
  if ratio != 0.8:
    suffix += f"_ratio{ratio:g}"
  return suffix + (f"_seed{seed}" if seed else "")


def make_config(
  resolution: int = 64,
  *,
  source_dir: str | None = None,
  tag: str | None = None,
  split: str = "video",
  split_ratio: float = 0.8,
  split_seed: int = 0,
  **clip_options,
) -> VideoFolderConfig:
  """Config for these parameters; its name encodes every non-default one.

  Args:
    resolution: stored side S.
    source_dir: the folder of videos (None: the manual directory).
    tag: prefix of the config name ("<tag>_64..."; default: the source
      folder's name), which keeps builds of several folders apart under
      one data_dir. Without source and tag, the predefined "64" / "128"
      configs are returned for default settings.
    split, split_ratio, split_seed: see `VideoFolderConfig`.
    **clip_options: other `ClipSpec` fields (num_frames, frame_spacing,
      clip_step, aspect, interpolation, flow_*).
  """
  if split not in SPLIT_MODES:
    raise ValueError(f"split must be one of {SPLIT_MODES}, got {split!r}")
  if split == "time":
    splits.time_spans(split_ratio)  # Validates the ratio.
  elif not 0.0 <= split_ratio <= 1.0:
    raise ValueError(f"--split_ratio must be in [0, 1], got {split_ratio}")
  clip_options.setdefault("drop_scene_cuts", True)
  spec = clips.ClipSpec(resolution=resolution, **clip_options)
  name = str(resolution) + spec.name_suffix(DEFAULT_SPEC)
  name += _split_suffix(split, split_ratio, split_seed)
  if source_dir is not None and tag is None:
    tag = pathlib.Path(source_dir).resolve().name
  if tag:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", tag).strip("_") + f"_{name}"
  for config in Builder.BUILDER_CONFIGS:
    if config.name == name:
      return config
  return VideoFolderConfig(
    name=name,
    description=f"{resolution}x{resolution} clips of "
    f"{source_dir or 'the manual directory'}",
    source_dir=None if source_dir is None else str(source_dir),
    spec=spec,
    split=split,
    split_ratio=split_ratio,
    split_seed=split_seed,
  )


def object_ids(names: list[str]) -> dict[str, int]:
  """Object id of each video: the index of its parent folder among all
  parent folders (sorted); videos at the top level share one."""
  parents = {name: name.rpartition("/")[0] for name in names}
  index = {p: i for i, p in enumerate(sorted(set(parents.values())))}
  return {name: index[parent] for name, parent in parents.items()}


def assign(sources, cfg: VideoFolderConfig, root: pathlib.Path):
  """({split: [VideoJob]}, {name: reason}) for the discovered sources."""
  names = [s.name for s in sources]
  spans = {s: (0.0, 1.0) for s in splits.SPLITS}
  problems = {}
  if cfg.split == "video":
    chosen = splits.ratio_split(names, cfg.split_ratio, cfg.split_seed)
  elif cfg.split == "time":
    chosen = {s: names for s in splits.SPLITS}
    spans = splits.time_spans(cfg.split_ratio)
  else:
    lists = {
      s: splits.read_list(root / f)
      for s, f in SPLIT_FILES.items()
      if (root / f).is_file()
    }
    if not lists:
      raise FileNotFoundError(f"no train.txt or test.txt in {root}")
    chosen, problems = splits.list_split(names, lists)
  objects = object_ids(names)
  jobs = {}
  for split in splits.SPLITS:
    members = set(chosen[split])
    jobs[split] = [
      clips.VideoJob(s, i, object_id=objects[s.name], span=spans[split])
      for i, s in enumerate(sources)  # video_id: index among all found.
      if s.name in members
    ]
  return jobs, problems


class Builder(builder.ClipBuilder):
  """Clips, first -> last frame flow, of every video in a folder."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put videos (.mp4 .mkv .avi .webm .mov) and folders of frames (.png .jpg,
  natural name order) anywhere below the manual directory, or give
  `make_config(source_dir=...)` / `build.py --source DIR`. Optional
  train.txt / test.txt there list videos by relative path (split="files").
  """
  BUILDER_CONFIGS = [
    VideoFolderConfig(
      name=str(s),
      description=f"{s}x{s} clips",
      spec=dataclasses.replace(DEFAULT_SPEC, resolution=s),
    )
    for s in RESOLUTIONS
  ]
  DEFAULT_CONFIG_NAME = "64"

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    root = pathlib.Path(cfg.source_dir or dl_manager.manual_dir)
    sources = video_io.discover(root)
    jobs, problems = assign(sources, cfg, root)
    for name, reason in problems.items():
      self.report.skip("lists", name, reason)
    self.info.metadata.update(
      source_dir=str(root.resolve()),
      spec=dataclasses.asdict(cfg.spec),
      split=dict(mode=cfg.split, ratio=cfg.split_ratio, seed=cfg.split_seed),
      video_names=[s.name for s in sources],
      split_videos={k: [j.source.name for j in v] for k, v in jobs.items()},
    )
    return {
      split: self._generate_examples(split, split_jobs, root)
      for split, split_jobs in jobs.items()
    }
