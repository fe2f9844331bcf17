"""Tests of flow precomputation: outputs, resume after a kill, bad input."""

import contextlib
import io
import os
import pathlib
import signal
import subprocess
import sys
import time

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

import flow
from flow import estimators, precompute, video_io

ROOT = pathlib.Path(__file__).resolve().parents[1]
H, W = 48, 64  # Multiples of 16: ffmpeg's encoder keeps the size.


def _clip(num_frames: int, seed: int) -> np.ndarray:
  """(T, H, W, 3) uint8: a smooth texture drifting 1 px right per frame."""
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(0, 255, (H // 8, (W + num_frames) // 8 + 1, 3))
  big = cv2.resize(
    coarse.astype(np.float32),
    (8 * coarse.shape[1], H),
    interpolation=cv2.INTER_CUBIC,
  )
  frames = [
    big[:, num_frames - t : num_frames - t + W] for t in range(num_frames)
  ]
  return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def _write_video(path: pathlib.Path, num_frames: int, seed: int) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  iio.imwrite(path, _clip(num_frames, seed), fps=10, plugin="FFMPEG")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> pathlib.Path:
  """Six real h264 mp4s (16 frames) for the resume test."""
  root = tmp_path_factory.mktemp("videos")
  for i in range(6):
    _write_video(root / f"clip{i}.mp4", 16, seed=i)
  return root


def _cli(*args) -> list[str]:
  return [sys.executable, "-m", "flow.precompute", "--no_progress", *args]


def test_outputs_shapes_names_and_values(tmp_path):
  src = tmp_path / "src"
  _write_video(src / "walk.mp4", 9, seed=0)
  _write_video(src / "p1" / "run.mkv", 6, seed=1)
  frames = _clip(7, seed=2)
  (src / "still").mkdir()
  for t, frame in enumerate(frames):  # Natural order: f2 before f10.
    cv2.imwrite(str(src / "still" / f"f{t * 4}.png"), frame[..., ::-1])
  (src / "notes.txt").write_text("not a source")
  out = tmp_path / "out"
  summary = precompute.precompute(
    src, out, lag=2, stride=2, batch_size=2, progress=False
  )
  assert sorted(summary.computed) == ["p1/run", "still", "walk"]
  assert not summary.failed and not summary.skipped
  shapes = {"walk": 4, "p1/run": 2, "still": 3}  # t = 0, 2, .. < T - 2.
  for name, n in shapes.items():
    stored = np.load(precompute.output_path(out, name))
    assert stored.shape == (n, H, W, 2) and stored.dtype == np.float16
  assert summary.pairs == sum(shapes.values())
  expected = flow.estimate_flow(frames[[0, 2, 4]], frames[[2, 4, 6]])
  np.testing.assert_array_equal(
    np.load(out / "still.npy"), expected.astype(np.float16)
  )
  assert np.median(expected[..., 0]) == pytest.approx(2.0, abs=0.3)


def test_pair_batches_order():
  frames = [np.full((2, 2, 3), t, np.uint8) for t in range(8)]
  batches = list(precompute.pair_batches(frames, lag=3, stride=2, batch_size=2))
  firsts = [b[0][:, 0, 0, 0].tolist() for b in batches]
  seconds = [b[1][:, 0, 0, 0].tolist() for b in batches]
  assert firsts == [[0, 2], [4]] and seconds == [[3, 5], [7]]


def test_fixed_batch_pads_tails():
  shapes = []

  def fake(a, b):
    shapes.append(a.shape)
    return (a - b).astype(np.float32)[..., :2]

  run = precompute._fixed_batch(fake, 4)
  a = np.arange(3, dtype=np.uint8)[:, None, None, None] * np.ones(
    (3, 2, 2, 3), np.uint8
  )
  np.testing.assert_array_equal(run(a, 0 * a), fake(a, 0 * a))
  assert shapes[0] == (4, 2, 2, 3)  # The tail of 3 ran as a batch of 4.


def _wait_for_output(proc, out: pathlib.Path, timeout: float = 60) -> None:
  deadline = time.monotonic() + timeout
  while not list(out.glob("*.npy")):
    if proc.poll() is not None or time.monotonic() > deadline:
      raise AssertionError(f"no output before exit/timeout: {proc.returncode}")
    time.sleep(0.002)


def test_killed_run_resumes_without_recomputing(videos, tmp_path):
  reference = tmp_path / "reference"
  precompute.precompute(videos, reference, progress=False)
  out = tmp_path / "out"
  proc = subprocess.Popen(
    _cli("--frames", str(videos), "--out", str(out)),
    cwd=ROOT,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  _wait_for_output(proc, out)
  proc.send_signal(signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL
  done = {p.name: p.stat() for p in out.glob("*.npy")}
  assert 1 <= len(done) < 6, done
  # What a kill inside `write_atomic` leaves behind.
  (out / ".clip5.npy.abc123.partial").write_bytes(b"\x93NUMPY half")
  run = subprocess.run(
    _cli("--frames", str(videos), "--out", str(out)),
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  assert run.returncode == 0, run.stderr
  assert f"{6 - len(done)} computed" in run.stdout
  assert f"{len(done)} already done" in run.stdout
  for name, stat in done.items():  # Not rewritten.
    now = (out / name).stat()
    assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
  assert not list(out.glob(".*.partial"))
  for i in range(6):
    name = f"clip{i}.npy"
    assert (out / name).read_bytes() == (reference / name).read_bytes()


def test_bad_sources_are_skipped_and_listed(tmp_path):
  src = tmp_path / "src"
  _write_video(src / "good.mp4", 5, seed=0)
  _write_video(src / "one_frame.mp4", 1, seed=1)
  noise = np.random.default_rng(0).integers(0, 255, (20, H, W, 3), np.uint8)
  iio.imwrite(tmp_path / "full.mkv", noise, fps=10, plugin="FFMPEG")
  data = (tmp_path / "full.mkv").read_bytes()
  (src / "cut_stream.mkv").write_bytes(
    data[: len(data) // 2]
  )  # Decodes 10 of 20.
  data = (src / "good.mp4").read_bytes()
  (src / "cut_index.mp4").write_bytes(data[: len(data) // 2])  # Index lost.
  (src / "empty.mp4").write_bytes(b"")
  (src / "text.webm").write_text("hello\n" * 100)
  (src / "frames").mkdir()
  (src / "frames" / "0.png").write_bytes(
    cv2.imencode(".png", _clip(1, 0)[0])[1]
  )
  (src / "frames" / "1.png").write_text("not a png")
  out = tmp_path / "out"
  run = subprocess.run(
    _cli("--frames", str(src), "--out", str(out)),
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  assert run.returncode == 1, run.stderr
  bad = ["cut_index", "cut_stream", "empty", "frames", "one_frame", "text"]
  for name in bad:
    assert f"FAILED {name}" in run.stdout
  assert "truncated" in run.stdout and "too short" in run.stdout
  assert "1 computed" in run.stdout and "6 failed" in run.stdout
  assert sorted(p.name for p in out.iterdir() if p.suffix == ".npy") == [
    "good.npy"
  ]
  assert not list(out.glob(".*.partial"))


def test_other_settings_are_refused(tmp_path):
  src = tmp_path / "src"
  _write_video(src / "a.mp4", 3, seed=0)
  out = tmp_path / "out"
  precompute.precompute(src, out, options={"preset": "fast"}, progress=False)
  with pytest.raises(precompute.SettingsMismatchError, match="preset"):
    precompute.precompute(src, out, progress=False)
  with pytest.raises(precompute.SettingsMismatchError, match="lag"):
    precompute.precompute(src, out, lag=2, options={"preset": "fast"})
  run = subprocess.run(
    _cli("--frames", str(src), "--out", str(out), "--preset", "medium"),
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  assert run.returncode == 2 and "other settings" in run.stderr
  again = precompute.precompute(
    src, out, options={"preset": "fast"}, batch_size=3, progress=False
  )
  assert again.skipped == ["a"]  # Batch size does not change the values.


def test_estimator_identity(tmp_path):
  weights = tmp_path / "w.npz"
  weights.write_bytes(b"weights v1")
  moved = tmp_path / "moved.npz"
  moved.write_bytes(b"weights v1")
  ident = estimators.estimator_identity
  assert ident("dis") == ident("dis", {"preset": "medium", "min_size": 256})
  a = ident("raft", {"weights": str(weights), "batch_size": 2})
  assert a == ident("raft", {"weights": str(moved), "preset": "fast"})
  moved.write_bytes(b"weights v2")
  assert a != ident("raft", {"weights": str(moved)})
  with pytest.raises(ValueError, match="unknown option"):
    ident("dis", {"iters": 3})


def test_discover_names_and_errors(tmp_path):
  (tmp_path / "a").mkdir()
  (tmp_path / "a" / "x.mp4").write_bytes(b"")
  (tmp_path / "a" / "x.avi").write_bytes(b"")
  with pytest.raises(ValueError, match="same output name"):
    video_io.discover(tmp_path)
  with pytest.raises(FileNotFoundError):
    video_io.discover(tmp_path / "missing")
  names = [s.name for s in video_io.discover(str(tmp_path / "a" / "*.mp4"))]
  assert names == ["x"]
  (tmp_path / "a" / "x.avi").unlink()
  assert [s.name for s in video_io.discover(tmp_path)] == ["a/x"]


def test_one_run_per_output_directory(tmp_path):
  src = tmp_path / "src"
  _write_video(src / "a.mp4", 3, seed=0)
  out = tmp_path / "out"
  out.mkdir()
  with precompute._lock(out):
    with pytest.raises(RuntimeError, match="another precompute run"):
      precompute.precompute(src, out, progress=False)
  os.remove(out / precompute.LOCK)
  assert precompute.precompute(src, out, progress=False).computed == ["a"]


def test_a_rejected_run_writes_nothing_and_the_corrected_one_runs(tmp_path):
  src = tmp_path / "src"
  _write_video(src / "a.mp4", 3, seed=0)
  out = tmp_path / "out"
  (tmp_path / "file").write_text("x")
  bad = [
    (["--preset", "bogus"], "--preset 'bogus': choose one of"),
    (["--method", "raft"], "--weights: RAFT needs"),
    (["--lag", "0"], "--lag: 0 must be >= 1"),
    (["--out", str(tmp_path / "file")], "is a file, not a directory"),
  ]
  for extra, words in bad:
    err = io.StringIO()
    argv = ["--no_progress", "--frames", str(src), "--out", str(out), *extra]
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as done:
      sys.exit(precompute.main(argv))
    assert done.value.code == 2 and err.getvalue().count("\n") == 1
    assert words in err.getvalue(), err.getvalue()
    assert not out.exists()
  argv = ["--no_progress", "--frames", str(src), "--out", str(out)]
  assert precompute.main(argv + ["--preset", "fast"]) == 0
  assert (out / precompute.MANIFEST).exists()
