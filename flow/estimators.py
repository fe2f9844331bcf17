"""Optical flow between RGB frames: one entry point, several methods.

`estimate_flow` validates its input and dispatches to a method in `METHODS`.
A method is a function `(frames_a_nhw3, frames_b_nhw3, *, preset, min_size,
**options) -> flow_nhw2` on a batch of uint8 RGB pairs: "dis" (OpenCV DIS,
the default) and "raft" (the ported RAFT network; `weights=` a converted
.npz, see `flow.raft_convert`).

Flow convention (shared by every dataset and by evaluation): flow[y, x] is
the displacement in pixels of the input resolution that carries pixel (x, y)
of frame a to its position in frame b; channel 0 = u (+x right), channel 1 =
v (+y down).
"""

import functools
import hashlib
import inspect
import pathlib
import zipfile
from collections.abc import Callable

import cv2
import numpy as np

DIS_PRESETS = {
  "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
  "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
  "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _upscale_factor(height: int, width: int, min_size: int) -> int:
  """Smallest integer factor that brings the shorter side to >= min_size."""
  if min_size <= 0:
    return 1
  return max(1, -(-min_size // min(height, width)))


def _dis_pair(
  dis: cv2.DISOpticalFlow, a_hw3: np.ndarray, b_hw3: np.ndarray, factor: int
) -> np.ndarray:
  """DIS flow of one pair, estimated at `factor` x the input size."""
  h, w = a_hw3.shape[:2]
  gray_a = cv2.cvtColor(a_hw3, cv2.COLOR_RGB2GRAY)
  gray_b = cv2.cvtColor(b_hw3, cv2.COLOR_RGB2GRAY)
  if factor > 1:
    big = (w * factor, h * factor)
    gray_a = cv2.resize(gray_a, big, interpolation=cv2.INTER_LINEAR)
    gray_b = cv2.resize(gray_b, big, interpolation=cv2.INTER_LINEAR)
  flow_hw2 = dis.calc(gray_a, gray_b, None)
  if factor > 1:
    # Block-average back to the input grid (integer factor keeps pixel
    # centres aligned), then express vectors in input pixels.
    flow_hw2 = cv2.resize(flow_hw2, (w, h), interpolation=cv2.INTER_AREA)
    flow_hw2 /= factor
  return flow_hw2.astype(np.float32, copy=False)


def dis_flow(
  frames_a_nhw3: np.ndarray,
  frames_b_nhw3: np.ndarray,
  *,
  preset: str = "medium",
  min_size: int = 256,
) -> np.ndarray:
  """OpenCV DIS flow for a batch of pairs (validated uint8 RGB).

  Args:
    frames_a_nhw3: (N, H, W, 3) uint8 RGB source frames.
    frames_b_nhw3: (N, H, W, 3) uint8 RGB target frames.
    preset: "ultrafast", "fast" or "medium".
    min_size: inputs whose shorter side is below this are upscaled by an
      integer factor for estimation (DIS patches are 8 px and lose detail on
      tiny frames); 0 disables upscaling.

  Returns:
    (N, H, W, 2) float32 flow in pixels of the input resolution.
  """
  if preset not in DIS_PRESETS:
    raise ValueError(
      f"unknown DIS preset {preset!r}; choose one of {sorted(DIS_PRESETS)}"
    )
  dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
  factor = _upscale_factor(*frames_a_nhw3.shape[1:3], min_size)
  return np.stack(
    [_dis_pair(dis, a, b, factor) for a, b in zip(frames_a_nhw3, frames_b_nhw3)]
  )


@functools.lru_cache(maxsize=4)
def _raft_fn(weights: str, variant: str | None, iters: int):
  """Loaded, jitted RAFT (jax is imported only when RAFT is used)."""
  from flow import raft  # noqa: PLC0415

  model = raft.load_raft(weights, variant)
  return raft.make_flow_fn(model, iters=iters), model.min_side


def _resize(frames_nhwc: np.ndarray, h: int, w: int, interp) -> np.ndarray:
  """Each (H, W, C) frame resized to (h, w) by cv2 (C = 2 or 3)."""
  return np.stack(
    [cv2.resize(f, (w, h), interpolation=interp) for f in frames_nhwc]
  )


def _raft_chunk(fn, a_nhw3, b_nhw3, factor: int, min_side: int):
  """Upscales, edge-pads (centred, as RAFT's InputPadder) to a multiple of
  8 (>= min_side), runs `fn`, crops and rescales to the input grid."""
  h, w = a_nhw3.shape[1:3]
  bh, bw = h * factor, w * factor
  hp, wp = (max(min_side, -(-s // 8) * 8) for s in (bh, bw))
  top, left = (hp - bh) // 2, (wp - bw) // 2
  pad = ((0, 0), (top, hp - bh - top), (left, wp - bw - left), (0, 0))
  prep = lambda f: np.pad(
    f if factor == 1 else _resize(f, bh, bw, cv2.INTER_LINEAR), pad, "edge"
  )
  flow = np.asarray(fn(prep(a_nhw3), prep(b_nhw3)))
  flow = flow[:, top : top + bh, left : left + bw]
  if factor > 1:
    flow = _resize(flow, h, w, cv2.INTER_AREA) / factor
  return flow.astype(np.float32)


def raft_flow(
  frames_a_nhw3: np.ndarray,
  frames_b_nhw3: np.ndarray,
  *,
  weights: str | None = None,
  variant: str | None = None,
  iters: int = 12,
  min_size: int = 256,
  batch_size: int = 8,
  preset: str | None = None,
) -> np.ndarray:
  """RAFT flow for a batch of pairs (validated uint8 RGB).

  Frames are upscaled like DIS's (`min_size`), edge-padded to a multiple
  of 8 (at least 64), and the flow is cropped and scaled back.

  Args:
    frames_a_nhw3, frames_b_nhw3: (N, H, W, 3) uint8 RGB.
    weights: path of a `python -m flow.raft_convert` .npz (required).
    variant: "large" / "small" to insist on one; None takes the file's.
    iters: GRU refinement iterations.
    min_size: shorter side below which frames are upscaled; 0 disables.
    batch_size: pairs per device call (bounds memory).
    preset: ignored (DIS's speed presets have no RAFT meaning).

  Returns:
    (N, H, W, 2) float32 flow in pixels of the input resolution.
  """
  del preset
  if weights is None:
    raise ValueError(
      "method 'raft' needs weights=<converted .npz>; see flow/raft_convert.py"
    )
  fn, min_side = _raft_fn(str(weights), variant, iters)
  factor = _upscale_factor(*frames_a_nhw3.shape[1:3], min_size)
  return np.concatenate(
    [
      _raft_chunk(
        fn,
        frames_a_nhw3[i : i + batch_size],
        frames_b_nhw3[i : i + batch_size],
        factor,
        min_side,
      )
      for i in range(0, len(frames_a_nhw3), batch_size)
    ]  # fmt: skip
  )


FlowMethod = Callable[..., np.ndarray]

METHODS: dict[str, FlowMethod] = {"dis": dis_flow, "raft": raft_flow}


def _file_sha256(path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def estimator_identity(method: str, options: dict | None = None) -> dict:
  """What determines the values of `estimate_flow(method=..., **options)`.

  Used to tell whether stored flow was made with the same settings: the
  method's defaults are filled in, a `weights` path is replaced by the
  sha256 of its file (a moved file is the same estimator, a reconverted
  one is not), and settings that do not change the values (`batch_size`;
  `preset` for RAFT, which ignores it) are dropped.

  Returns:
    A JSON-serializable dict, keys sorted, "method" first.

  Raises:
    ValueError: unknown method or option.
    FileNotFoundError: the weights file does not exist.
  """
  if method not in METHODS:
    raise ValueError(
      f"unknown flow method {method!r}; choose one of {sorted(METHODS)}"
    )
  params = inspect.signature(METHODS[method]).parameters.values()
  keywords = {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY}
  unknown = set(options or {}) - set(keywords)
  if unknown:
    raise ValueError(f"unknown option(s) of {method!r}: {sorted(unknown)}")
  full = dict(keywords)
  full.update(options or {})
  full.pop("batch_size", None)
  if method == "raft":
    full.pop("preset", None)
  if full.get("weights") is not None:
    full["weights"] = "sha256:" + _file_sha256(full["weights"])
  return {"method": method, **{k: full[k] for k in sorted(full)}}


def _check_frames(frames_a: np.ndarray, frames_b: np.ndarray) -> None:
  for name, frames in (("frames_a", frames_a), ("frames_b", frames_b)):
    if frames.dtype != np.uint8:
      raise ValueError(f"{name} must be uint8 RGB, got dtype {frames.dtype}")
    if frames.ndim not in (3, 4) or frames.shape[-1] != 3:
      raise ValueError(
        f"{name} must have shape (H, W, 3) or (N, H, W, 3), got {frames.shape}"
      )
    if min(frames.shape[-3:-1]) < 2:
      raise ValueError(f"{name} is too small for flow: {frames.shape}")
  if frames_a.shape != frames_b.shape:
    raise ValueError(
      f"frame shapes differ: {frames_a.shape} vs {frames_b.shape}"
    )


def estimate_flow(
  frames_a: np.ndarray,
  frames_b: np.ndarray,
  *,
  method: str = "dis",
  preset: str = "medium",
  min_size: int = 256,
  **options,
) -> np.ndarray:
  """Optical flow from frames_a to frames_b.

  Args:
    frames_a: uint8 RGB, one frame (H, W, 3) or a batch (N, H, W, 3).
    frames_b: uint8 RGB of the same shape.
    method: a key of `METHODS` ("dis", "raft").
    preset: speed/quality preset of the method ("ultrafast", "fast",
      "medium" for DIS).
    min_size: shorter side (pixels) below which frames are upscaled for
      estimation; the flow is returned at the input resolution.
    **options: method-specific keywords, e.g. for "raft" `weights` (path
      of a converted .npz, required), `variant`, `iters`.

  Returns:
    float32 flow, (H, W, 2) for one pair or (N, H, W, 2) for a batch, in
    pixels of the input resolution, channels (u, v).

  Raises:
    ValueError: wrong dtype or shape, mismatched shapes, unknown method or
      preset.
  """
  frames_a, frames_b = np.asarray(frames_a), np.asarray(frames_b)
  _check_frames(frames_a, frames_b)
  if method not in METHODS:
    raise ValueError(
      f"unknown flow method {method!r}; choose one of {sorted(METHODS)}"
    )
  single = frames_a.ndim == 3
  if single:
    frames_a, frames_b = frames_a[None], frames_b[None]
  flow_nhw2 = METHODS[method](
    np.ascontiguousarray(frames_a),
    np.ascontiguousarray(frames_b),
    preset=preset,
    min_size=min_size,
    **options,
  )
  return flow_nhw2[0] if single else flow_nhw2


def check_options(method: str, options: dict | None) -> None:
  """Refuses estimator settings that would fail on the first frame pair
  (before a caller writes anything): unknown method, preset or variant,
  RAFT without or with a missing weights file, negative sizes.

  Raises:
    ValueError: its message starts with the option's name.
  """
  options = dict(options or {})
  if method not in METHODS:
    raise ValueError(f"method {method!r}: choose one of {sorted(METHODS)}")
  preset = options.get("preset")
  if method == "dis" and preset is not None and preset not in DIS_PRESETS:
    raise ValueError(f"preset {preset!r}: choose one of {sorted(DIS_PRESETS)}")
  size = options.get("min_size")
  if size is not None and (not isinstance(size, int) or size < 0):
    raise ValueError(f"min_size {size!r}: must be an int >= 0")
  if method != "raft":
    return
  iters = options.get("iters")
  if iters is not None and (not isinstance(iters, int) or iters < 1):
    raise ValueError(f"iters {iters!r}: must be an int >= 1")
  if options.get("variant") not in (None, "large", "small"):
    raise ValueError(f"variant {options['variant']!r}: large or small")
  weights = options.get("weights")
  if not weights:
    raise ValueError(
      "weights: RAFT needs a converted .npz (python -m flow.raft_convert)"
    )
  if not pathlib.Path(weights).is_file():
    raise ValueError(f"weights {weights}: no such file")
  if not zipfile.is_zipfile(weights):
    raise ValueError(f"weights {weights}: not an .npz file")
