"""The TaiChi-HD, Poking Plants, iPER and Human3.6M builders on fixture
trees in each dataset's real layout: tiny generated mp4 / mkv videos (a
textured square moving over a textured background, so flow and GrabCut
masks mean something) beside broken files that must be reported and
skipped. Builds are at 32 px, like tests/test_video_folder.py, so the
training checks reuse its compiled tiny step.
"""

import contextlib
import io
import math
import pathlib
import warnings

import cv2
import imageio.v2 as imageio
import numpy as np
import pytest

from datasets.human36m import human36m_dataset_builder as h36m
from datasets.iper import iper_dataset_builder as iper
from datasets.plants import plants_dataset_builder as plants
from datasets.taichi import taichi_dataset_builder as taichi
from datasets.video_common import cli

RES, SIDE, T = 32, 64, 10


def moving_square(n: int, seed: int = 0) -> list[np.ndarray]:
  """n SIDE x SIDE frames: a bright textured square swinging left and
  right over a dim texture."""
  rng = np.random.default_rng(seed)
  back = cv2.GaussianBlur(rng.random((SIDE, SIDE, 3)), (0, 0), 3)
  back = (40 + 60 * back / back.max()).astype(np.uint8)
  patch = cv2.GaussianBlur(rng.random((24, 24, 3)), (0, 0), 1)
  patch = (150 + 105 * patch / patch.max()).astype(np.uint8)
  frames = []
  for t in range(n):
    frame, x = back.copy(), int(20 + 12 * math.sin(t / 6))
    frame[20:44, x : x + 24] = patch
    frames.append(frame)
  return frames


def write_video(path: pathlib.Path, n: int, seed: int = 0) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    imageio.mimwrite(path, moving_square(n, seed), fps=25, macro_block_size=16)


def break_files(folder: pathlib.Path, good: pathlib.Path) -> dict:
  """A zero-byte mp4, a text file named .mkv and an mp4 cut in half,
  next to `good`; returns {name: reason word}."""
  (folder / "empty.mp4").write_bytes(b"")
  (folder / "notvideo.mkv").write_text("not a video\n")
  data = good.read_bytes()
  (folder / "cut.mp4").write_bytes(data[: len(data) // 2])
  return {"empty.mp4": "empty", "notvideo.mkv": "unreadable", "cut.mp4": "moov"}


def num_clips(lo: int, hi: int, spacing: int) -> int:
  """Clips of T + 1 sampled frames, T apart, in raw frames [lo, hi)."""
  sampled = len(range(lo, hi, spacing))
  return 0 if sampled < T + 1 else (sampled - T - 1) // T + 1


def build(builder_cls, root, tmp, **settings):
  return cli.build_manual(
    builder_cls,
    str(root),
    str(tmp),
    resolution=RES,
    progress=False,
    **settings,
  )


def records(builder, split: str) -> list[dict]:
  source = builder.as_data_source()[split]
  return [source[i] for i in range(len(source))]


def skipped(builder) -> dict:
  items = builder.info.metadata["report"]["skipped"]
  return {pathlib.Path(s["path"]).name: s["reason"] for s in items}


def assert_skipped(builder, reasons: dict) -> None:
  got = skipped(builder)
  for name, word in reasons.items():
    assert name in got and word in got[name].lower(), (name, got)


def train_two_steps(builder, tmp, **data) -> None:
  """Two steps of the tiny config on a build (the video_folder test's
  settings, so its compiled step is reused)."""
  from configs import tiny
  from ii2v_jax.training import train

  c = tiny.get_config()
  c.data.data_dir = str(pathlib.Path(builder.data_dir).parents[2])
  c.data.name = f"{builder.info.name}/{builder.builder_config.name}"
  c.data.resolution = RES
  c.data.update(data)
  c.train.num_steps = 2
  c.gan.enabled = False
  c.train.sample_every = 0
  metrics = train.train_and_evaluate(c, str(tmp))
  assert np.isfinite(metrics["loss_dyn"]) and np.isfinite(metrics["loss_ae"])


# TaiChi-HD: FOMM folders train/ and test/ of <ytid>#<start>#<end>.mp4.
TAICHI = {
  "train/AAA#000000#000100": 61,
  "train/AAA#000200#000300": 61,
  "train/BBB#000000#000080": 61,
  "test/CCC#000000#000100": 41,
}


@pytest.fixture(scope="module")
def taichi_build(tmp_path_factory):
  root = tmp_path_factory.mktemp("taichi")
  for i, (name, n) in enumerate(TAICHI.items()):
    write_video(root / f"{name}.mp4", n, seed=i)
  bad = break_files(root / "train", root / "test/CCC#000000#000100.mp4")
  builder = build(taichi.Builder, root, tmp_path_factory.mktemp("data"))
  return builder, bad


def test_taichi_official_split_counts_and_ids(taichi_build):
  builder, bad = taichi_build
  for split in ("train", "test"):
    want = sum(
      num_clips(0, n, 2) for name, n in TAICHI.items() if name.startswith(split)
    )
    assert builder.info.splits[split].num_examples == want > 0
  assert_skipped(builder, bad)
  train = records(builder, "train")
  objects = {int(e["video_id"]): int(e["object_id"]) for e in train}
  assert objects == {0: 0, 1: 0, 2: 1}  # AAA twice, then BBB.
  test = records(builder, "test")
  assert {int(e["object_id"]) for e in test} == {2}
  assert [int(e["start_frame"]) for e in train[:2]] == [0, 20]  # Spacing 2.


def test_taichi_masks_cover_the_moving_square(taichi_build):
  builder, _ = taichi_build
  for example in records(builder, "train"):
    mask = example["fg_mask"]
    assert mask.shape == (RES, RES) and mask.dtype == np.uint8
    assert 0.05 < mask.mean() < 0.8  # Neither empty nor everything.
    bright = example["video"][0].mean(-1) > 120  # The square at x_0.
    assert mask[bright].mean() > 0.6


def test_taichi_trains_with_filtered_pokes(taichi_build, tmp_path):
  train_two_steps(taichi_build[0], tmp_path, filter_flow=True)


# Poking Plants: VID_<plant>_<n>.mkv at any depth, temporal 80 / 20.
PLANTS = {"VID_1_1": 120, "more/VID_2_3": 110}
PLANTS_LEFT_OUT = {"VID_8_1": 60, "VID_0_3_1024x1024": 60, "clip_7": 60}


@pytest.fixture(scope="module")
def plants_build(tmp_path_factory):
  """Built through the CLI (one worker); (builder, its output, root)."""
  root = tmp_path_factory.mktemp("plants")
  for i, (name, n) in enumerate({**PLANTS, **PLANTS_LEFT_OUT}.items()):
    write_video(root / f"{name}.mkv", n, seed=i)
  (root / "VID_5_1.mkv").write_bytes(b"")
  (root / "VID_5_2.mkv").write_text("not a video\n")
  data_dir = tmp_path_factory.mktemp("data")
  argv = ["--manual_dir", str(root), "--data_dir", str(data_dir)]
  argv += ["--resolution", str(RES), "--no_progress", "--num_workers", "1"]
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    assert cli.main_manual(plants.Builder, "plants", argv) == 0
  return build(plants.Builder, root, data_dir), out.getvalue(), root


def test_plants_temporal_split_per_video(plants_build):
  builder, out, _ = plants_build
  bounds = {n: math.floor(0.8 * n) for n in PLANTS.values()}
  want = {
    "train": sum(num_clips(0, bounds[n], 2) for n in PLANTS.values()),
    "test": sum(num_clips(bounds[n], n, 2) for n in PLANTS.values()),
  }
  counts = f"examples: train: {want['train']}, test: {want['test']}"
  assert counts in out and "disk:" in out and "filter_flow" not in out
  lengths = {1: PLANTS["VID_1_1"], 2: PLANTS["more/VID_2_3"]}  # By plant.
  for split in ("train", "test"):
    examples = records(builder, split)
    assert len(examples) == want[split]
    for e in examples:
      start, bound = int(e["start_frame"]), bounds[lengths[e["object_id"]]]
      if split == "train":
        assert start + 2 * T < bound
      else:
        assert start >= bound and start % 2 == bound % 2
    assert e["fg_mask"].min() == 1  # No masks for plants.


def test_plants_exclusions_and_broken_files(plants_build, tmp_path):
  builder, out, root = plants_build
  assert_skipped(
    builder,
    {
      "VID_8_1": "plant 8",
      "VID_0_3_1024x1024": "excluded",
      "clip_7": "not named",
      "VID_5_1.mkv": "empty",
      "VID_5_2.mkv": "unreadable",
    },
  )
  assert "VID_5_2.mkv" in out and "VID_8_1" in out
  config = plants.Builder.make_config(RES, exclude_object_8=False)
  plan = plants.Builder(config=config, data_dir=str(tmp_path)).plan(root)
  names = [j.source.name for j in plan.jobs["train"]]
  assert "VID_8_1" in names and "VID_0_3_1024x1024" not in names


def test_plants_trains(plants_build, tmp_path):
  train_two_steps(plants_build[0], tmp_path)


# iPER: iPER_1024_video_release/AAA_B_C.mp4 + train.txt / val.txt beside.
IPER_TRAIN = {"001_1_1": 41, "001_1_2": 41, "002_1_1": 31}
IPER_TEST = {"001_2_1": 41, "003_1_2": 41}


@pytest.fixture(scope="module")
def iper_build(tmp_path_factory):
  root = tmp_path_factory.mktemp("iper")
  videos = root / iper.RELEASE
  for i, (name, n) in enumerate({**IPER_TRAIN, **IPER_TEST}.items()):
    write_video(videos / f"{name}.mp4", n, seed=i)
  (videos / "004_1_1.mp4").write_bytes(b"")
  data = (videos / "001_1_1.mp4").read_bytes()
  (videos / "005_1_1.mp4").write_bytes(data[: len(data) // 2])
  (root / "train.txt").write_text("001/1/1\n001/1/2\n002/1/1\n009/1/1\n")
  (root / "val.txt").write_text("001/2/1\n003/1/2\n004/1/1\n005/1/1\n")
  return build(iper.Builder, root, tmp_path_factory.mktemp("data"))


def test_iper_follows_train_txt(iper_build):
  builder = iper_build
  for split, videos in (("train", IPER_TRAIN), ("test", IPER_TEST)):
    want = sum(num_clips(0, n, 1) for n in videos.values())
    assert builder.info.splits[split].num_examples == want > 0
    got = {int(e["object_id"]) for e in records(builder, split)}
    assert got == {
      100 * int(name[:3]) + int(name[4]) for name in videos
    }  # 100 x actor + outfit.
  meta = builder.info.metadata
  assert meta["split_videos"]["train"] == list(IPER_TRAIN)
  assert meta["val_not_in_test"] == []
  assert_skipped(
    builder,
    {
      "009_1_1": "not found",
      "004_1_1.mp4": "empty",
      "005_1_1.mp4": "moov",
    },
  )
  starts = [int(e["start_frame"]) for e in records(builder, "train")[:3]]
  assert starts == [0, 10, 20]  # Spacing 1 (iPOKE's fix of fd 8).
  mask = records(builder, "test")[0]["fg_mask"]
  assert 0.05 < mask.mean() < 0.8


def test_iper_trains_with_filtered_pokes(iper_build, tmp_path):
  train_two_steps(iper_build, tmp_path, filter_flow=True)


# Human3.6M: S<k>/Videos/<Action>[ n].<camera>.mp4, every 8th frame.
H36M = {
  "S1/Videos/Directions 1.54138969": 250,
  "S1/Videos/Walking.60457274": 250,
  "S5/Videos/Eating 2.55011271": 170,
  "S9/Videos/Directions.54138969": 90,
  "S11/Videos/Sitting 1.58860488": 170,
}


@pytest.fixture(scope="module")
def h36m_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("h36m")
  for i, (name, n) in enumerate(H36M.items()):
    write_video(root / f"{name}.mp4", n, seed=i)
  write_video(root / "S1/Videos/_ALL 1.54138969.mp4", 90)
  (root / "S7/Videos").mkdir(parents=True)
  (root / "S7/Videos/Posing.54138969.mp4").write_bytes(b"")
  return root


@pytest.fixture(scope="module")
def h36m_build(h36m_root, tmp_path_factory):
  return build(h36m.Builder, h36m_root, tmp_path_factory.mktemp("data"))


def test_h36m_holds_out_s9_and_s11(h36m_build):
  builder = h36m_build
  for split in ("train", "test"):
    held_out = split == "test"
    videos = [
      n
      for name, n in H36M.items()
      if (name.split("/")[0] in ("S9", "S11")) == held_out
    ]
    want = sum(num_clips(0, n, 8) for n in videos)
    examples = records(builder, split)
    assert len(examples) == want > 0
    subjects = {int(e["object_id"]) for e in examples}
    assert subjects == ({9, 11} if held_out else {1, 5})
    assert all(int(e["start_frame"]) % (8 * T) == 0 for e in examples)
  assert_skipped(
    builder,
    {
      "_ALL 1.54138969": "_all video",
      "Posing.54138969.mp4": "empty",
    },
  )


def test_h36m_half_horizon_switch_stores_flow_to_the_middle(
  h36m_build, h36m_root, tmp_path
):
  config = h36m.Builder.make_config(RES, half_horizon=True)
  assert config.spec.flow_target == T // 2 and "flowto5" in config.name
  half = build(h36m.Builder, h36m_root, tmp_path, half_horizon=True)
  full, cut = records(h36m_build, "test")[0], records(half, "test")[0]
  np.testing.assert_array_equal(full["video"], cut["video"])
  assert np.abs(full["flow"] - cut["flow"]).max() > 1.0


def test_h36m_trains(h36m_build, tmp_path):
  train_two_steps(h36m_build, tmp_path)
