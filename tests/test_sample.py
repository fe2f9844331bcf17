"""The sampling CLI: real outputs and one-line errors for bad input."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from ii2v_jax import sample
from ii2v_jax.data import user_image
from ii2v_jax.io import video_io


def run_main(capsys, *argv):
  try:
    code = sample.main(list(argv))
  except SystemExit as e:  # argparse's usage errors.
    code = e.code
  out = capsys.readouterr()
  return code, out.out, out.err


def test_writes_mp4_and_gif_for_any_image_size(tiny_workdir, tmp_path, capsys):
  image = np.full((90, 160, 3), 128, np.uint8)
  cv2.imwrite(str(tmp_path / "in.png"), image)
  code, out, err = run_main(
    capsys,
    "--workdir",
    tiny_workdir,
    "--image",
    str(tmp_path / "in.png"),
    "--fit",
    "squash",  # The whole image, as the reference GUI.
    "--poke",
    "150,10,-20,5",
    "--poke",
    "3,80,4,-4",
    "--out",
    str(tmp_path / "o.mp4"),
    "--num_frames",
    "4",
  )
  assert code == 0, err
  assert str(tmp_path / "o.mp4") in out and str(tmp_path / "o.gif") in out
  video = video_io.read_video(tmp_path / "o.mp4")
  assert video.shape == (5, 90, 160, 3)  # x_0 plus 4 frames, input size.
  gif = video_io.read_video(tmp_path / "o.gif")
  assert gif.shape[0] == 5
  # The arrow is drawn on the first frame only.
  assert np.abs(gif[0].astype(int) - image).max() > 100
  assert np.abs(gif[0, 10, 150].astype(int) - [255, 60, 60]).max() < 40
  # The strip: first (with its arrow), middle and last frame, 4 px apart.
  strip = cv2.cvtColor(
    cv2.imread(str(tmp_path / "o_strip.png")), cv2.COLOR_BGR2RGB
  )
  assert strip.shape == (90, 3 * 160 + 2 * 4, 3)
  assert np.abs(strip[10, 150].astype(int) - [255, 60, 60]).max() < 40
  assert (strip[:, 160:164] == 255).all() and (strip[:, 324:328] == 255).all()


def test_default_image_is_a_test_frame(tiny_workdir, capsys):
  code, out, err = run_main(
    capsys, "--workdir", tiny_workdir, "--poke", "120,80,5,-3"
  )
  assert code == 0, err
  assert "poke_120_80_5_-3.gif" in out


def test_default_fit_is_the_centre_crop(tiny_workdir, tmp_path, capsys):
  image = np.full((90, 160, 3), 128, np.uint8)
  image[:, :35] = 0  # Outside the centred 90x90 square.
  cv2.imwrite(str(tmp_path / "in.png"), image)
  args = ["--workdir", tiny_workdir, "--image", str(tmp_path / "in.png")]
  out_args = ["--out", str(tmp_path / "o.mp4"), "--num_frames", "2"]
  code, _, err = run_main(capsys, *args, "--poke", "80,45,5,0", *out_args)
  assert code == 0, err
  gif = video_io.read_video(tmp_path / "o.gif")
  assert gif.shape == (3, 90, 90, 3)  # The square the model sees.
  assert gif[0, :, :4].min() > 60  # The black band is not in it.
  # Arrow source at x = 80 - 35 in the crop.
  assert np.abs(gif[0, 45, 45].astype(int) - [255, 60, 60]).max() < 40
  code, _, err = run_main(capsys, *args, "--poke", "10,45,5,0", *out_args)
  assert code == 2 and "centre crop" in err and "pad" in err


@pytest.mark.parametrize("mode", ["crop", "squash"])
def test_poke_scaling_to_model_resolution(mode):
  image = np.zeros((256, 128, 3), np.uint8)
  fit = user_image.fit_image(image, 64, 3, mode)
  pmap = user_image.poke_map(fit, [(64, 128, 8, -8)])
  rows, cols = np.nonzero(pmap[..., 0])
  assert (rows.mean(), cols.mean()) == (32, 32)
  # squash scales x by 64/128 and y by 64/256; crop keeps 128x128.
  expected = [4.0, -2.0] if mode == "squash" else [4.0, -4.0]
  np.testing.assert_allclose(pmap[32, 32], expected)


@pytest.mark.parametrize(
  "args, message",
  [
    (["--poke", "1,2,3"], "poke"),
    (["--poke", "a,b,c,d"], "poke"),
    (["--poke", "999,5,1,1"], "outside"),
    (["--poke", "5,5,1,1", "--image", "/nonexistent.png"], "not found"),
  ],
)
def test_bad_input_gives_one_line(tiny_workdir, capsys, args, message):
  code, _, err = run_main(capsys, "--workdir", tiny_workdir, *args)
  assert code != 0
  assert len(err.strip().splitlines()) == 1 and message in err.lower()


def test_unreadable_image(tiny_workdir, tmp_path, capsys):
  bad = tmp_path / "bad.png"
  bad.write_text("not an image")
  code, _, err = run_main(
    capsys, "--workdir", tiny_workdir, "--image", str(bad), "--poke", "1,1,1,1"
  )
  assert code != 0 and "cannot read image" in err


def test_workdir_without_checkpoint_says_how_to_train(tmp_path):
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "ii2v_jax.sample",
      "--workdir",
      str(tmp_path),
      "--poke",
      "10,10,1,1",
    ],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr
  assert "no checkpoint" in proc.stderr and "make demo" in proc.stderr


def test_strip_is_first_middle_and_last_frame(tmp_path):
  video = np.random.default_rng(0).integers(0, 255, (7, 6, 5, 3), np.uint8)
  video_io.write_strip(tmp_path / "s.png", video, gap=2)
  strip = np.asarray(Image.open(tmp_path / "s.png"))
  white = np.full((6, 2, 3), 255, np.uint8)
  expected = np.concatenate([video[0], white, video[3], white, video[6]], 1)
  np.testing.assert_array_equal(strip, expected)


@pytest.mark.parametrize(
  "extra, message",
  [
    (["--fps", "0"], "--fps must be between 1 and 60"),
    (["--fps", "-1"], "--fps must be between 1 and 60"),
    (["--num_frames", "100000"], "--num_frames must be between 1 and 100"),
    (["--out", "/proc/no/such/o.mp4"], "cannot create /proc/no/such"),
    (["--out", "{tmp}"], "is a folder; name a file"),
    (["--out", ""], "--out is empty"),
    (["--fps", "abc"], "argument --fps: invalid int value"),
    (["--fit", "bogus"], "argument --fit: invalid choice"),
    (["--bogus"], "unrecognized arguments: --bogus"),
  ],
)
def test_bad_arguments_are_one_line_before_any_work(
  tmp_path, capsys, extra, message
):
  extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
  argv = ["--workdir", str(tmp_path / "none"), "--poke", "1,1,1,1", *extra]
  code, out, err = run_main(capsys, *argv)
  assert code == 2 and message in err, err
  assert len(err.strip().splitlines()) == 1 and not out


def test_a_config_json_that_is_not_a_config_is_one_line(tmp_path, capsys):
  (tmp_path / "checkpoints").mkdir()
  (tmp_path / "config.json").write_text("[1, 2]")
  code, _, err = run_main(
    capsys, "--workdir", str(tmp_path), "--poke", "1,1,1,1"
  )
  assert code == 2 and "holds a JSON list, not a config" in err, err
  (tmp_path / "config.json").write_text("{broken")
  code, _, err = run_main(
    capsys, "--workdir", str(tmp_path), "--poke", "1,1,1,1"
  )
  assert code == 2 and "is not a readable config" in err, err
