"""Tests for lpips.py (LPIPS v0.1, REFERENCE §9.3)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import real_clips
from scipy import ndimage

from ii2v_jax.pretrained import lpips

SIZE = 64
NETS = ("vgg", "alex")


@functools.cache
def _params(net):
  return lpips.load_lpips_params(net)


@functools.cache
def _distance_fn(net):
  return jax.jit(functools.partial(lpips.lpips_distance, net=net))


def _distance(net, a_hwc, b_hwc):
  """LPIPS of one pair of (SIZE, SIZE, 3) numpy images, a float."""
  a, b = jnp.asarray(a_hwc[None]), jnp.asarray(b_hwc[None])
  return float(_distance_fn(net)(_params(net), a, b)[0])


def _dead_leaves(seed, size=SIZE):
  """(size, size, 3) float32 in [-1, 1]: occluding discs, with the scale-
  invariant statistics of natural images (the dead-leaves model)."""
  rng = np.random.default_rng(seed)
  image_hwc = np.zeros((size, size, 3), np.float32)
  rows, cols = np.mgrid[:size, :size]
  for _ in range(200):
    radius = min(size / 3, 0.02 * size / (rng.random() ** 0.6 + 0.02))
    row, col = rng.random(2) * size
    disc = (rows - row) ** 2 + (cols - col) ** 2 < radius**2
    image_hwc[disc] = rng.random(3)
  return image_hwc * 2 - 1


def _blur(image_hwc, sigma):
  return ndimage.gaussian_filter(image_hwc, (sigma, sigma, 0), mode="reflect")


@pytest.mark.parametrize("net", NETS)
def test_identical_images_give_zero(net):
  image = _dead_leaves(0)
  assert abs(_distance(net, image, image)) < 1e-6


@pytest.mark.parametrize("net", NETS)
def test_symmetric(net):
  a, b = _dead_leaves(1), _blur(_dead_leaves(1), 1.5)
  np.testing.assert_allclose(
    _distance(net, a, b), _distance(net, b, a), rtol=1e-5
  )


@pytest.mark.parametrize("net", NETS)
def test_grows_monotonically_with_blur(net):
  image = _dead_leaves(2)
  dists = [_distance(net, image, _blur(image, s)) for s in (0.5, 1, 2, 3)]
  assert dists[0] > 0.005
  assert all(a < b for a, b in zip(dists, dists[1:])), dists


@pytest.mark.parametrize("net", NETS)
def test_grows_monotonically_with_blur_on_real_frame(net):
  frame = real_clips.read_frames("carphone_pristine.mp4", [40])[0]
  image = frame[40 : 40 + SIZE, 56 : 56 + SIZE].astype(np.float32) / 127.5 - 1
  dists = [_distance(net, image, _blur(image, s)) for s in (0.5, 1, 2, 3)]
  assert dists[0] > 0.005
  assert all(a < b for a, b in zip(dists, dists[1:])), dists


@pytest.mark.parametrize("net", NETS)
def test_noise_vs_image_in_plausible_range(net):
  image = _dead_leaves(3)
  noise = np.random.default_rng(3).uniform(-1, 1, image.shape)
  dist = _distance(net, image, noise.astype(np.float32))
  assert 0.3 < dist < 1.0, dist
  assert dist > _distance(net, image, _blur(image, 1))


def test_batch_matches_single_pairs():
  a = np.stack([_dead_leaves(4), _dead_leaves(5)])
  b = np.stack([_blur(a[0], 1), _dead_leaves(6)])
  batched = _distance_fn("vgg")(_params("vgg"), a, b)
  assert batched.shape == (2,)
  for i in range(2):
    np.testing.assert_allclose(
      batched[i], _distance("vgg", a[i], b[i]), rtol=1e-5
    )


@pytest.mark.parametrize(
  "net, taps", [("vgg", lpips.VGG_TAPS), ("alex", lpips.ALEX_TAPS)]
)
def test_heads_are_non_negative_per_tap(net, taps):
  heads = _params(net)["heads"]
  assert tuple(heads) == taps
  for weight_c in heads.values():
    assert weight_c.ndim == 1 and float(weight_c.min()) >= 0
    assert float(weight_c.max()) > 0


def test_alexnet_tap_shapes_follow_torchvision():
  x = jnp.zeros((1, SIZE, SIZE, 3))
  feats = lpips.alexnet_features(_params("alex")["backbone"], x)
  shapes = {k: v.shape[1:] for k, v in feats.items()}
  assert shapes == {
    "relu1": (15, 15, 64),
    "relu2": (7, 7, 192),
    "relu3": (3, 3, 384),
    "relu4": (3, 3, 256),
    "relu5": (3, 3, 256),
  }


def test_net_names_and_mismatch():
  assert lpips.load_lpips_params("alexnet")["heads"].keys() == set(
    lpips.ALEX_TAPS
  )
  with pytest.raises(ValueError, match="Unknown LPIPS net"):
    lpips.load_lpips_params("squeeze")
  image = jnp.zeros((1, SIZE, SIZE, 3))
  with pytest.raises(ValueError, match="not LPIPS-alex"):
    lpips.lpips_distance(_params("vgg"), image, image, net="alex")


def test_scaling_layer_equals_imagenet_normalisation():
  # Why the torchvision backbones take LPIPS's scaling as it is.
  x = np.linspace(-1, 1, 9, dtype=np.float32)[:, None]
  scaled = (x - lpips._SHIFT) / lpips._SCALE
  mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
  np.testing.assert_allclose(scaled, ((x + 1) / 2 - mean) / std, atol=1e-5)
