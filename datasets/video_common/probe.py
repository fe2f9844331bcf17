"""Questions to ffmpeg about a video file without decoding it."""

import pathlib
import re
import subprocess

from flow.video_io import IMAGE_EXTS, BadInputError, Source


def count_frames(source: Source) -> int:
  """Frames of a video (container packets, no decoding) or frame folder."""
  path = pathlib.Path(source.path)
  if source.kind == "frames":
    return sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
  import imageio_ffmpeg  # noqa: PLC0415 (only needed for videos)

  try:
    return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])
  except Exception as e:  # ffmpeg's failures come as several types.
    raise BadInputError(why_unreadable(path) or f"cannot count: {e}") from e


def _is_text(path: pathlib.Path) -> bool:
  """Whether the file starts like text: UTF-8 without NUL bytes."""
  try:
    with open(path, "rb") as f:
      head = f.read(4096)
  except OSError:
    return False
  if not head or b"\0" in head:
    return False
  try:
    head.decode("utf-8")
  except UnicodeDecodeError as e:  # A cut multi-byte char at the end.
    return e.start >= len(head) - 3
  return True


def why_unreadable(path) -> str:
  """ffmpeg's first complaint about opening `path` ("" if none), e.g.
  "moov atom not found" for an mp4 cut short; "empty file" for 0 bytes."""
  path = pathlib.Path(path)
  if path.is_file() and path.stat().st_size == 0:
    return "empty file (0 bytes)"
  if _is_text(path):  # ffmpeg would guess a format and blame its atoms.
    return "not a video file (it holds text)"
  import imageio_ffmpeg  # noqa: PLC0415

  cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path)]
  try:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
  except (OSError, subprocess.TimeoutExpired):
    return ""
  for line in proc.stderr.splitlines():
    line = re.sub(r"^\[[^\]]*\]\s*", "", line.strip())  # "[in#0 @ 0x..]"
    if line and "output file" not in line:
      return line
  return ""
