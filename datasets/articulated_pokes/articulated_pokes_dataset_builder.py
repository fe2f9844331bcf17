"""TFDS builder of the synthetic articulated-pokes dataset (no download).

Configs "64" (default) and "128" name the resolution; `make_config` makes
configs with other example counts, clip lengths (e.g. tiny test builds) or
flow estimators (e.g. RAFT instead of the default DIS).
Read the prepared data with `builder.as_data_source()` (no TensorFlow).
"""

import dataclasses
import hashlib
import json

import numpy as np
import tensorflow_datasets as tfds

import flow
from datasets import features
from datasets.articulated_pokes import clips, objects

NUM_TRAIN, NUM_TEST = 2000, 200
RESOLUTIONS = (64, 128)


@dataclasses.dataclass(eq=False)
class ArticulatedPokesConfig(tfds.core.BuilderConfig):
  """Resolution, clip length, example counts and flow estimator of a build.

  `flow_method` / `flow_options` choose the estimator of the stored `flow`
  and `pair_flow` (`clips.flow_settings`; "dis" without options: the
  tuned DIS defaults).
  """

  resolution: int = 64
  num_frames: int = clips.NUM_FRAMES
  num_train: int = NUM_TRAIN
  num_test: int = NUM_TEST
  flow_method: str = "dis"
  flow_options: dict = dataclasses.field(default_factory=dict)


def _flow_suffix(method: str, options: dict) -> str:
  """Config-name suffix of an estimator: empty for the default, else
  "_flow-<method>-<hash>", the hash over every setting that changes the
  values (`flow.estimator_identity`: weights by content)."""
  if method == "dis" and not options:
    return ""
  identity = flow.estimator_identity(method, options)
  digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
  return f"_flow-{method}-{digest.hexdigest()[:8]}"


def _config_name(resolution, num_frames, num_train, num_test) -> str:
  name = str(resolution)
  if num_frames != clips.NUM_FRAMES:
    name += f"_frames{num_frames}"
  if (num_train, num_test) != (NUM_TRAIN, NUM_TEST):
    name += f"_train{num_train}_test{num_test}"
  return name


def make_config(
  resolution: int = 64,
  *,
  num_frames: int = clips.NUM_FRAMES,
  num_train: int = NUM_TRAIN,
  num_test: int = NUM_TEST,
  flow_method: str = "dis",
  flow_options: dict | None = None,
) -> ArticulatedPokesConfig:
  """Config for these parameters; its name encodes every non-default one.

  The predefined "64" / "128" configs are returned for default counts and
  flow. A non-default estimator adds "_flow-<method>-<hash of settings>".
  """
  if resolution < 16 or num_frames < 2 or min(num_train, num_test) < 0:
    raise ValueError(
      f"bad config: resolution={resolution}, num_frames={num_frames}, "
      f"num_train={num_train}, num_test={num_test}"
    )
  flow_options = dict(flow_options or {})
  name = _config_name(resolution, num_frames, num_train, num_test)
  flow_suffix = _flow_suffix(flow_method, flow_options)
  name += flow_suffix
  for config in Builder.BUILDER_CONFIGS:
    if config.name == name:
      return config
  return ArticulatedPokesConfig(
    name=name,
    description=f"{resolution}x{resolution}, custom counts / length"
    + (f" / flow {flow_method} {flow_options}" if flow_suffix else ""),
    resolution=resolution,
    num_frames=num_frames,
    num_train=num_train,
    num_test=num_test,
    flow_method=flow_method,
    flow_options=flow_options,
  )


def _extra_features(resolution: int, num_frames: int) -> dict:
  s, tensor = resolution, tfds.features.Tensor
  return {
    "gt_flow": tensor(
      shape=(s, s, 2), dtype=np.float32, encoding=features.ZLIB
    ),
    "pair_flow": tensor(
      shape=(s, s, 2), dtype=np.float32, encoding=features.ZLIB
    ),
    "poke_pixel": tensor(shape=(2,), dtype=np.int32),
    "poke_displacement": tensor(shape=(2,), dtype=np.float32),
    "poke_impulse": tensor(shape=(2,), dtype=np.float32),
    "joints": tensor(shape=(num_frames, objects.J_MAX, 2), dtype=np.float32),
    "num_joints": tensor(shape=(), dtype=np.int32),
  }


class Builder(tfds.core.GeneratorBasedBuilder):
  """Pokes of procedurally generated 2-D articulated objects."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
    ArticulatedPokesConfig(
      name=str(s), description=f"{s}x{s} frames", resolution=s
    )
    for s in RESOLUTIONS
  ]
  DEFAULT_CONFIG_NAME = "64"

  def __init__(self, *, file_format: str = "array_record", **kwargs):
    super().__init__(file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    return self.dataset_info_from_configs(
      features=features.clip_features(
        cfg.resolution,
        cfg.num_frames,
        _extra_features(cfg.resolution, cfg.num_frames),
      ),
      homepage="https://github.com/CompVis/interactive-image2video-synthesis",
      # Record i of a split is example i (video_id i); loaders shuffle.
      disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    cfg = self.builder_config
    return {
      "train": self._generate_examples("train", cfg.num_train),
      "test": self._generate_examples("test", cfg.num_test),
    }

  def _generate_examples(self, split: str, count: int):
    cfg = self.builder_config
    for index in range(count):
      yield (
        index,
        clips.make_clip(
          split,
          index,
          resolution=cfg.resolution,
          num_frames=cfg.num_frames,
          flow_method=cfg.flow_method,
          flow_options=cfg.flow_options,
        ),
      )
