"""Frame sources for flow precomputation, and atomic array files.

A source is a video file (decoded with imageio's ffmpeg plugin, which
imageio-ffmpeg ships) or a folder of still frames (png / jpg, in natural
name order). `discover` turns directories, globs and paths into sources,
each with a unique name that mirrors its path below the directory given
(`videos/p1/walk.mp4` -> "p1/walk"); `iter_frames` yields its frames as
uint8 RGB and raises `BadInputError` for anything it cannot read.
"""

import contextlib
import dataclasses
import glob
import math
import os
import pathlib
import re
import tempfile
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".webm", ".mov")
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
TEMP_SUFFIX = ".partial"
# A video decoding to fewer frames than its container's duration x fps
# promises, by more than this many (or 5 %), is taken as truncated.
TRUNCATION_SLACK = 2


class BadInputError(Exception):
  """A source that cannot be read (corrupt, truncated, empty, too short)."""


@dataclasses.dataclass(frozen=True)
class Source:
  """One video or frame folder; `name` is its output's relative stem."""

  name: str
  path: pathlib.Path
  kind: str  # "video" or "frames"


def _natural_key(name: str) -> list:
  """Sort key that orders frame_2 before frame_10."""
  return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name)]


def _images(folder: pathlib.Path) -> list[pathlib.Path]:
  files = [
    p
    for p in folder.iterdir()
    if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")
  ]
  return sorted(files, key=lambda p: _natural_key(p.name))


def _walk(root: pathlib.Path, prefix: str) -> Iterator[Source]:
  """Sources below `root`: videos anywhere, folders holding images."""
  if _images(root):
    yield Source(prefix or root.name, root, "frames")
    return
  for child in sorted(root.iterdir(), key=lambda p: _natural_key(p.name)):
    if child.name.startswith("."):
      continue
    name = f"{prefix}/{child.stem}" if prefix else child.stem
    if child.is_dir():
      yield from _walk(child, f"{prefix}/{child.name}".lstrip("/"))
    elif child.suffix.lower() in VIDEO_EXTS:
      yield Source(name, child, "video")


def _sources_of(entry: str) -> list[Source]:
  """Sources named by one path or glob pattern."""
  paths = [pathlib.Path(entry)]
  if glob.has_magic(entry):
    paths = [pathlib.Path(p) for p in sorted(glob.glob(entry, recursive=True))]
  elif not paths[0].exists():
    raise FileNotFoundError(f"no such file or directory: {entry}")
  out = []
  for path in paths:
    if path.is_dir():
      # A directory given by a glob keeps its own name as prefix.
      prefix = path.name if glob.has_magic(entry) else ""
      out.extend(_walk(path, prefix))
    elif path.suffix.lower() in VIDEO_EXTS or not glob.has_magic(entry):
      out.append(Source(path.stem, path, "video"))
  return out


def discover(entries: str | os.PathLike | Iterable) -> list[Source]:
  """Sources of directories, video files and glob patterns, in order.

  A directory holding images is one frame folder; otherwise every video
  below it (by extension) and every folder of images below it is a
  source, named by its path relative to the directory, without
  extension. A file given explicitly is taken as a video whatever its
  extension (reading it reports what is wrong).

  Raises:
    FileNotFoundError: a path that does not exist.
    ValueError: nothing found, or two sources with the same name.
  """
  if isinstance(entries, (str, os.PathLike)):
    entries = [entries]
  sources = [s for e in entries for s in _sources_of(os.fspath(e))]
  if not sources:
    raise ValueError(f"no videos or frame folders found in {list(entries)}")
  names = [s.name for s in sources]
  clashes = sorted({n for n in names if names.count(n) > 1})
  if clashes:
    raise ValueError(
      f"several sources map to the same output name: {clashes}; rename "
      "them or precompute them into different output directories"
    )
  return sources


def _first_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0] if text else ''}"


def _rgb(frame: np.ndarray) -> np.ndarray:
  """(H, W, 3) uint8 RGB from a decoded frame (gray, RGBA or RGB)."""
  frame = np.asarray(frame)
  if frame.dtype != np.uint8:
    raise BadInputError(f"frames are {frame.dtype}, not 8-bit")
  if frame.ndim == 2:
    frame = frame[..., None]
  if frame.ndim != 3 or frame.shape[-1] not in (1, 3, 4):
    raise BadInputError(f"unexpected frame shape {frame.shape}")
  if frame.shape[-1] == 1:
    frame = np.repeat(frame, 3, axis=-1)
  return np.ascontiguousarray(frame[..., :3])


def _video_frames(path: pathlib.Path) -> Iterator[np.ndarray]:
  import imageio.v3 as iio  # noqa: PLC0415 (only needed for videos)

  count, expected = 0, math.nan
  try:
    with iio.imopen(path, "r", plugin="FFMPEG") as reader:
      meta = reader.metadata()
      expected = float(meta.get("duration") or math.nan) * float(
        meta.get("fps") or math.nan
      )
      for frame in reader.iter():
        yield _rgb(frame)
        count += 1
  except BadInputError:
    raise
  except Exception as e:  # The decoder's errors come in many types.
    raise BadInputError(f"cannot decode video: {_first_line(e)}") from e
  slack = max(TRUNCATION_SLACK, 0.05 * expected)
  if math.isfinite(expected) and count < expected - slack:
    raise BadInputError(
      f"truncated: decoded {count} of about {expected:.0f} frames "
      "(container duration x fps)"
    )


def _folder_frames(path: pathlib.Path) -> Iterator[np.ndarray]:
  for image in _images(path):
    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if bgr is None:
      raise BadInputError(f"cannot read image {image.name}")
    yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def iter_frames(source: Source) -> Iterator[np.ndarray]:
  """Yields the frames of `source`, (H, W, 3) uint8 RGB, all one size.

  Raises:
    BadInputError: undecodable or truncated video, unreadable image,
      frames of different sizes (possibly after some frames were yielded).
  """
  frames = (
    _video_frames(source.path)
    if source.kind == "video"
    else _folder_frames(source.path)
  )
  shape = None
  for index, frame in enumerate(frames):
    if shape is None:
      shape = frame.shape
    elif frame.shape != shape:
      raise BadInputError(f"frame {index} is {frame.shape}, frame 0 {shape}")
    yield frame


def write_atomic(path: pathlib.Path, write) -> None:
  """Calls `write(file)` on a temporary file beside `path`, fsyncs it and
  renames it to `path`: readers see the old file or the whole new one.
  On any error (or interrupt) the temporary file is removed."""
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(
    dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX
  )
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only.
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise
  # Persist the rename itself (the directory entry).
  dir_fd = os.open(path.parent, os.O_RDONLY)
  try:
    os.fsync(dir_fd)
  finally:
    os.close(dir_fd)


def save_npy_atomic(path: pathlib.Path, array: np.ndarray) -> None:
  """`np.save` to `path` through `write_atomic`."""
  write_atomic(path, lambda f: np.save(f, array, allow_pickle=False))


def remove_temp_files(root: pathlib.Path) -> int:
  """Deletes temporary files an interrupted `write_atomic` left below
  `root`; returns how many."""
  stale = list(root.rglob(f".*{TEMP_SUFFIX}"))
  for path in stale:
    path.unlink(missing_ok=True)
  return len(stale)
