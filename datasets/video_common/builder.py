"""A TFDS builder base for datasets read from a manual directory.

A dataset subclasses `ManualVideoBuilder`, sets `DEFAULT_SPEC` (its frame
spacing, masks, ...), `OPTIONS` (its own switches with defaults) and
implements `plan(root)`: the videos of each split as `VideoJob`s. The base
makes the 64 / 128 configs, the feature spec, the generation through
`runner.generate_examples` and the build report in `metadata.json`.
"""

import dataclasses
import pathlib

import tensorflow_datasets as tfds

from datasets import features
from datasets.video_common import clips, report, runner

RESOLUTIONS = (64, 128)


@dataclasses.dataclass(eq=False)
class ManualConfig(tfds.core.BuilderConfig):
  """Clip spec and dataset switches (`options`, name -> value) of a build."""

  spec: clips.ClipSpec = dataclasses.field(default_factory=clips.ClipSpec)
  options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Plan:
  """What a dataset's `plan` returns.

  jobs: {split: [VideoJob]}. problems: {name: reason} of inputs left out
  before decoding (bad names, split-list entries without a video). meta:
  extra entries for metadata.json.
  """

  jobs: dict
  problems: dict = dataclasses.field(default_factory=dict)
  meta: dict = dataclasses.field(default_factory=dict)


class ClipBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Shared by every video builder: the clip features, worker processes,
  the build report (stored in the metadata and printed at the end).
  Subclasses give `_split_generators` returning `_generate_examples`."""

  def __init__(self, *, num_workers=0, progress=True, **kwargs):
    """num_workers: processes cutting videos (0: this one); the output does
    not depend on it. progress: tqdm bars per split."""
    kwargs.setdefault("file_format", "array_record")
    super().__init__(**kwargs)
    self.num_workers, self.progress = num_workers, progress
    self.report = report.BuildReport()

  def _info(self) -> tfds.core.DatasetInfo:
    spec = self.builder_config.spec
    return self.dataset_info_from_configs(
      features=features.clip_features(spec.resolution, spec.num_frames),
      # Source, settings, video names and the build report.
      metadata=tfds.core.MetadataDict(),
      disable_shuffling=True,  # Generation order: videos, clips by start.
    )

  def _generate_examples(self, split, jobs, root):
    count = 0
    for item in runner.generate_examples(
      jobs,
      self.builder_config.spec,
      split=split,
      report=self.report,
      root=root,
      num_workers=self.num_workers,
      progress=self.progress,
    ):
      count += 1
      yield item
    if not count:  # Said here, not as TFDS's "No examples were yielded".
      print(self.report.format())
      raise report.EmptySplitError(report.empty_split_message(split, len(jobs)))

  def _download_and_prepare(self, dl_manager, download_config):
    super()._download_and_prepare(dl_manager, download_config)
    self.info.metadata["report"] = self.report.to_json()
    print(self.report.format())


class ManualVideoBuilder(ClipBuilder, skip_registration=True):
  """Base of the real-footage builders (see module doc)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  DEFAULT_SPEC = clips.ClipSpec()
  OPTIONS: dict = {}
  DEFAULT_CONFIG_NAME = "64"

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    cls.BUILDER_CONFIGS = [cls.make_config(s) for s in RESOLUTIONS]

  @classmethod
  def make_config(cls, resolution: int = 64, **settings) -> ManualConfig:
    """Config for a resolution, `OPTIONS` switches and `ClipSpec` fields;
    its name is the resolution plus every non-default setting."""
    options = {k: settings.pop(k, v) for k, v in cls.OPTIONS.items()}
    fields = dataclasses.asdict(cls.DEFAULT_SPEC) | settings
    spec = clips.ClipSpec(**(fields | {"resolution": resolution}))
    name = str(resolution) + spec.name_suffix(cls.DEFAULT_SPEC)
    for key, value in options.items():
      if value != cls.OPTIONS[key]:
        name += f"_{key}-{value}".replace(".", "p").replace("-True", "")
    return ManualConfig(
      name=name,
      description=f"{resolution}x{resolution} clips",
      spec=spec,
      options=options,
    )

  def plan(self, root: pathlib.Path) -> Plan:
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    root = pathlib.Path(dl_manager.manual_dir)
    if not root.is_dir():
      raise FileNotFoundError(f"manual directory {root} not found")
    plan = self.plan(root)
    for name, reason in plan.problems.items():
      self.report.skip("layout", name, reason)
    cfg = self.builder_config
    self.info.metadata.update(
      source_dir=str(root.resolve()),
      spec=dataclasses.asdict(cfg.spec),
      options=dict(cfg.options),
      split_videos={
        k: [j.source.name for j in v] for k, v in plan.jobs.items()
      },
      **plan.meta,
    )
    return {
      split: self._generate_examples(split, jobs, root)
      for split, jobs in plan.jobs.items()
    }
