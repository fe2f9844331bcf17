"""The feature spec every dataset builder emits (the data contract).

Shared features of one clip at resolution S with T + 1 frames:

  video:       uint8   (T+1, S, S, 3)  RGB frames x_0 .. x_T (zlib-encoded).
  flow:        float32 (S, S, 2)       estimated flow x_0 -> x_T (`flow`
                                       package), pixels at S, (u, v).
  fg_mask:     uint8   (S, S)          1 = foreground; all ones if unknown.
  video_id:    int32   ()
  start_frame: int32   ()              index of x_0 in its source video.
  object_id:   int32   ()

Only `tfds.features.Tensor` is used, so building and reading need no
TensorFlow (read with `builder.as_data_source()` / `tfds.data_source`).
"""

import numpy as np
import tensorflow_datasets as tfds

ZLIB = tfds.features.Encoding.ZLIB
SHARED_FEATURES = (
  "video",
  "flow",
  "fg_mask",
  "video_id",
  "start_frame",
  "object_id",
)


def clip_features(
  resolution: int, num_frames: int, extra: dict | None = None
) -> tfds.features.FeaturesDict:
  """FeaturesDict of the shared clip spec plus dataset-specific features.

  Args:
    resolution: frame size S in pixels.
    num_frames: frames per clip, T + 1.
    extra: more features by name (must be TF-free, e.g. Tensor); may not
      redefine a shared name.

  Returns:
    The FeaturesDict for `DatasetInfo(features=...)`.
  """
  s = resolution
  spec = {
    "video": tfds.features.Tensor(
      shape=(num_frames, s, s, 3), dtype=np.uint8, encoding=ZLIB
    ),
    "flow": tfds.features.Tensor(
      shape=(s, s, 2), dtype=np.float32, encoding=ZLIB
    ),
    "fg_mask": tfds.features.Tensor(
      shape=(s, s), dtype=np.uint8, encoding=ZLIB
    ),
    "video_id": tfds.features.Tensor(shape=(), dtype=np.int32),
    "start_frame": tfds.features.Tensor(shape=(), dtype=np.int32),
    "object_id": tfds.features.Tensor(shape=(), dtype=np.int32),
  }
  clash = set(spec) & set(extra or {})
  if clash:
    raise ValueError(f"extra features redefine shared ones: {sorted(clash)}")
  return tfds.features.FeaturesDict({**spec, **(extra or {})})
