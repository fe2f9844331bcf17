"""Poke a still image and render the object's motion.

  python -m ii2v_jax.sample --poke X,Y,DX,DY [--poke ...] [--image PATH]
      [--workdir runs/synthetic] [--out PATH.mp4] [--num_frames N]

X, Y, DX, DY are pixels of the given image, whatever its size; they are
scaled to the model's resolution. Without --image, a test frame of the
model's dataset is used at 256x256. Writes an MP4, a GIF and a PNG strip
of the first, middle and last frame.
"""

import argparse
import pathlib
import sys

import cv2
import jax.numpy as jnp
import numpy as np

from ii2v_jax.data import pipeline, poke
from ii2v_jax.io import checkpoint, video_io
from ii2v_jax.models import inference

DEFAULT_WORKDIR = "runs/synthetic"
DISPLAY = 256


class SampleError(ValueError):
  """Bad user input, reported as one line."""


def load_image(path: str) -> np.ndarray:
  p = pathlib.Path(path)
  if not p.is_file():
    raise SampleError(f"image not found: {path}")
  bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
  if bgr is None:
    raise SampleError(f"cannot read image (not a supported image file): {path}")
  return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def default_image(config) -> np.ndarray:
  """First frame of the first test clip, upsampled to 256x256."""
  source = pipeline.open_split(
    config.data.data_dir, config.data.name, config.data.test_split
  )
  frame = source[0]["video"][0]
  return cv2.resize(frame, (DISPLAY, DISPLAY), interpolation=cv2.INTER_CUBIC)


def poke_map(pokes, image_hw3, size: int, poke_size: int) -> np.ndarray:
  h, w = image_hw3.shape[:2]
  model_pokes = [
    poke.poke_from_image_pixels(
      x,
      y,
      dx,
      dy,
      image_height=h,
      image_width=w,
      size=size,
      poke_size=poke_size,
    )
    for x, y, dx, dy in pokes
  ]
  return poke.make_poke_map(size, model_pokes, poke_size=poke_size)


def render(workdir: str, image, pokes, num_frames: int | None):
  """(display frames (T+1,H,W,3), image) for the pokes on the image."""
  config, graphdef, params, _ = checkpoint.load_model(workdir)
  image = default_image(config) if image is None else image
  s = config.data.resolution
  pmap = poke_map(pokes, image, s, config.data.poke_size)
  x0 = cv2.resize(image, (s, s), interpolation=cv2.INTER_LINEAR)
  x0 = inference.to_unit_range(jnp.asarray(x0))[None]
  t = num_frames or config.data.num_frames
  rollout = inference.make_rollout_fn(graphdef, t)
  video = np.asarray(inference.to_uint8(rollout(params, x0, pmap[None])))[0]
  h, w = image.shape[:2]
  frames = np.concatenate([image[None], video_io.resize_frames(video, (h, w))])
  for x, y, dx, dy in pokes:
    frames[0] = video_io.draw_arrow(frames[0], x, y, dx, dy)
  return frames


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument(
    "--poke",
    action="append",
    required=True,
    help="X,Y,DX,DY in pixels of the image; repeatable",
  )
  p.add_argument("--image", default=None)
  p.add_argument("--workdir", default=DEFAULT_WORKDIR)
  p.add_argument("--out", default=None, help="MP4 path; the GIF goes beside it")
  p.add_argument("--num_frames", type=int, default=None)
  p.add_argument("--fps", type=int, default=8)
  return p.parse_args(argv)


def output_path(args, pokes) -> pathlib.Path:
  if args.out:
    return pathlib.Path(args.out).with_suffix(".mp4")
  x, y, dx, dy = pokes[0]
  name = f"poke_{x:g}_{y:g}_{dx:g}_{dy:g}.mp4"
  return pathlib.Path(args.workdir) / "samples" / name


def run(args) -> pathlib.Path:
  pokes = [poke.parse_poke(p) for p in args.poke]
  if args.num_frames is not None and args.num_frames < 1:
    raise SampleError(f"--num_frames must be at least 1, got {args.num_frames}")
  image = None if args.image is None else load_image(args.image)
  if not (pathlib.Path(args.workdir) / "checkpoints").is_dir():
    raise checkpoint.CheckpointError(
      f"no checkpoint in {args.workdir}; train one first: make demo "
      "(or python launch.py --config configs/synthetic.py)"
    )
  frames = render(args.workdir, image, pokes, args.num_frames)
  mp4 = output_path(args, pokes)
  video_io.write_mp4(mp4, frames, fps=args.fps)
  video_io.write_gif(mp4.with_suffix(".gif"), frames, fps=args.fps)
  video_io.write_strip(strip_path(mp4), frames)
  return mp4


def strip_path(mp4: pathlib.Path) -> pathlib.Path:
  return mp4.with_name(mp4.stem + "_strip.png")


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    mp4 = run(args)
  except (ValueError, checkpoint.CheckpointError, pipeline.DataError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {mp4}")
  print(f"wrote {mp4.with_suffix('.gif')}")
  print(f"wrote {strip_path(mp4)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
