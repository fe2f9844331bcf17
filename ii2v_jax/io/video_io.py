"""Writing clips as MP4 (imageio-ffmpeg's bundled ffmpeg) and GIF (Pillow)."""

import contextlib
import pathlib
import warnings

import cv2
import imageio.v2 as imageio
import numpy as np
from PIL import Image


def resize_frames(video_thwc: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Resizes uint8 frames to (height, width) with bicubic interpolation."""
  h, w = size
  return np.stack(
    [cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in video_thwc]
  )


def draw_arrow(frame_hw3: np.ndarray, x, y, dx, dy) -> np.ndarray:
  """A copy of the frame with the poke drawn as an arrow from (x, y).

  Arrows shorter than 12 px are lengthened (same direction) to stay
  visible; the source pixel gets a dot.
  """
  out = np.ascontiguousarray(frame_hw3.copy())
  length = float(np.hypot(dx, dy))
  visible = length > 1e-6
  scale = max(1.0, 12.0 / length) if visible else 1.0
  thick = max(1, round(min(out.shape[:2]) / 128))
  # Endpoints far off the frame are clipped so cv2 gets small integers.
  far = 4 * max(out.shape[:2])
  pt = lambda a, b: tuple(int(round(np.clip(v, -far, far))) for v in (a, b))
  p0, p1 = pt(x, y), pt(x + dx * scale, y + dy * scale)
  cv2.circle(out, p0, 2 * thick, (255, 60, 60), -1, cv2.LINE_AA)
  if visible:
    cv2.arrowedLine(
      out, p0, p1, (255, 60, 60), thick, cv2.LINE_AA, tipLength=0.3
    )
  return out


def poked_frames(first_hw3, video_thwc, arrows) -> np.ndarray:
  """The video a user sees: the first frame with the pokes drawn as
  arrows, then the model's frames resized to its size.

  Args:
    first_hw3: (H, W, 3) uint8 first frame at display size.
    video_thwc: (T, S, S, 3) uint8 predicted frames.
    arrows: (x, y, dx, dy) in pixels of the first frame.

  Returns:
    (T + 1, H, W, 3) uint8.
  """
  h, w = first_hw3.shape[:2]
  frames = np.concatenate([first_hw3[None], resize_frames(video_thwc, (h, w))])
  for x, y, dx, dy in arrows:
    frames[0] = draw_arrow(frames[0], x, y, dx, dy)
  return frames


@contextlib.contextmanager
def _ffmpeg_child():
  """Silences jax's os.fork() warning while imageio-ffmpeg starts ffmpeg.

  imageio-ffmpeg forks to call os.setpgrp and then execs ffmpeg at once,
  so no jax thread state is used in the child: the warning is harmless.
  """
  with warnings.catch_warnings():
    warnings.filterwarnings(
      "ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning
    )
    yield


def write_mp4(path: pathlib.Path, video_thwc: np.ndarray, fps: int = 8) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with _ffmpeg_child():
    _write_h264(path, video_thwc, fps)


def _write_h264(path: pathlib.Path, video_thwc: np.ndarray, fps: int) -> None:
  imageio.mimwrite(
    str(path),
    list(video_thwc),
    fps=fps,
    codec="libx264",
    macro_block_size=1,
    quality=8,
  )


def write_gif(path: pathlib.Path, video_thwc: np.ndarray, fps: int = 8) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  frames = [Image.fromarray(f) for f in video_thwc]
  frames[0].save(
    path,
    save_all=True,
    append_images=frames[1:],
    duration=int(1000 / fps),
    loop=0,
  )


def write_strip(
  path: pathlib.Path, video_thwc: np.ndarray, gap: int = 4
) -> None:
  """First, middle and last frame side by side (white gaps) as a PNG."""
  t = len(video_thwc)
  picks = [video_thwc[0], video_thwc[t // 2], video_thwc[-1]]
  white = np.full((picks[0].shape[0], gap, 3), 255, np.uint8)
  row = np.concatenate([picks[0], white, picks[1], white, picks[2]], axis=1)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(row).save(path)


def read_video(path) -> np.ndarray:
  """All frames of a video file as uint8 (T,H,W,3) RGB."""
  with _ffmpeg_child():
    return np.stack(list(imageio.mimread(str(path), memtest=False)))
