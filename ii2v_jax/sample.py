"""Poke a still image and render the object's motion.

  python -m ii2v_jax.sample --poke X,Y,DX,DY [--poke ...] [--image PATH]
      [--workdir runs/synthetic] [--out PATH.mp4] [--num_frames N]
      [--fit crop|pad|squash]

X, Y, DX, DY are pixels of the given image, whatever its size. The model
sees the image's centred square (--fit crop, the datasets' rule), the image
padded to a square (pad) or squashed to one (squash); pokes are mapped onto
it and the video shows that square. Without --image, a test frame of the
model's dataset is used at 256x256. Writes an MP4, a GIF and a PNG strip
of the first, middle and last frame.
"""

import argparse
import pathlib
import sys

import numpy as np

from ii2v_jax.data import pipeline, poke, user_image
from ii2v_jax.io import checkpoint, video_io
from ii2v_jax.models import inference

DEFAULT_WORKDIR = "runs/synthetic"
# Longer rollouts drift far from anything the model was trained on, and
# every frame costs memory at display size.
MAX_FRAMES = 100


class SampleError(ValueError):
  """Bad user input, reported as one line."""


def load_image(path: str) -> np.ndarray:
  try:
    return user_image.read_image(path)
  except user_image.ImageError as e:
    raise SampleError(str(e)) from None


def default_image(config) -> np.ndarray:
  """First frame of the first test clip, upsampled to 256x256."""
  return user_image.dataset_images(config.data, 1)[0]


def render(workdir: str, image, pokes, num_frames: int | None, fit="crop"):
  """Display frames (T+1,H,W,3) of the pokes (image pixels) on the image.

  The image goes through `user_image` (the web app's mapping too): the
  fitted region is what the model sees and what the frames show.
  """
  config, graphdef, params, _ = checkpoint.load_model(workdir)
  image = default_image(config) if image is None else image
  geometry = user_image.fit_image(
    image, config.data.resolution, config.data.poke_size, fit
  )
  pmap = user_image.poke_map(geometry, pokes)
  x0 = user_image.model_input(image, geometry)
  t = num_frames or config.data.num_frames
  rollout = inference.make_uint8_rollout_fn(graphdef, t)
  video = np.asarray(rollout(params, x0[None], pmap[None]))[0]
  arrows = [geometry.to_display(*p) for p in pokes]
  first = user_image.display_frame(image, geometry)
  return video_io.poked_frames(first, video, arrows)


class _OneLineParser(argparse.ArgumentParser):
  """argparse whose usage errors are one line (no usage block), exit 2."""

  def error(self, message):
    self.exit(2, f"error: {message} (see --help)\n")


def parse_args(argv):
  p = _OneLineParser(
    prog="python -m ii2v_jax.sample", description=__doc__.splitlines()[0]
  )
  p.add_argument(
    "--poke",
    action="append",
    required=True,
    help="X,Y,DX,DY in pixels of the image; repeatable",
  )
  p.add_argument("--image", default=None)
  p.add_argument(
    "--fit",
    choices=user_image.FITS,
    default="crop",
    help="how the image becomes the model's square: centre crop (as the "
    "datasets), pad, or squash (the reference GUI)",
  )
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


def check_args(args) -> None:
  """Refuses what cannot give a video, before any work is done."""
  n = args.num_frames
  if n is not None and not 1 <= n <= MAX_FRAMES:
    raise SampleError(
      f"--num_frames must be between 1 and {MAX_FRAMES}, got {n}"
    )
  if not 1 <= args.fps <= 60:
    raise SampleError(f"--fps must be between 1 and 60, got {args.fps}")
  if args.out is not None and not args.out.strip():
    raise SampleError("--out is empty; name a file, e.g. poke.mp4")
  if args.out:
    out = pathlib.Path(args.out)
    if out.is_dir():
      raise SampleError(
        f"--out {args.out} is a folder; name a file, e.g. {out / 'poke.mp4'}"
      )
    try:
      out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
      raise SampleError(
        f"--out {args.out}: cannot create {out.parent} ({e.strerror})"
      ) from None


def run(args) -> pathlib.Path:
  pokes = [poke.parse_poke(p) for p in args.poke]
  check_args(args)
  image = None if args.image is None else load_image(args.image)
  if not (pathlib.Path(args.workdir) / "checkpoints").is_dir():
    raise checkpoint.CheckpointError(
      f"no checkpoint in {args.workdir}; train one first: make demo "
      "(or python launch.py --config configs/synthetic.py)"
    )
  frames = render(args.workdir, image, pokes, args.num_frames, args.fit)
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
  except OSError as e:  # writing the video: a full disk, no permission
    what = e.filename or "the video"
    print(f"error: cannot write {what}: {e.strerror}", file=sys.stderr)
    return 2
  print(f"wrote {mp4}")
  print(f"wrote {mp4.with_suffix('.gif')}")
  print(f"wrote {strip_path(mp4)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
