"""Tests for fvd.py: the Frechet distance on synthetic features, and FVD
properties on small sets of real clips in the paper's format (10 frames at
64x64, uint8)."""

import cv2
import numpy as np
import pytest
import real_clips
import scipy.linalg

from ii2v_jax.evaluate import fvd
from ii2v_jax.pretrained import i3d

NUM_CLIPS, FRAMES, SIZE = 8, 10, 64
NOISE_STDS = (8.0, 32.0)  # uint8 levels; FVD must grow 0 -> 8 -> 32.


def _scipy_frechet(a, b):
  """The textbook formula with scipy's sqrtm of the (non-symmetric) product."""
  mu_a, mu_b = a.mean(0), b.mean(0)
  s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  covmean = scipy.linalg.sqrtm(s_a @ s_b).real
  return np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2 * covmean)


def test_frechet_matches_scipy_sqrtm_on_full_rank_features():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(600, 12)) @ rng.normal(size=(12, 12))
  b = rng.normal(size=(500, 12)) @ rng.normal(size=(12, 12)) + 0.5
  np.testing.assert_allclose(
    fvd.frechet_distance(a, b), _scipy_frechet(a, b), rtol=1e-8
  )


def test_frechet_closed_form_for_diagonal_gaussians():
  var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
  mu_a, mu_b = np.zeros(3), np.array([1.0, 2.0, 0.0])
  got = fvd.frechet_distance_from_stats(
    mu_a, np.diag(var_a), mu_b, np.diag(var_b)
  )
  want = 5.0 + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_frechet_rank_deficient_sets():
  # Fewer samples than dimensions (as in small evaluations): singular
  # covariances; the result stays real, >= 0 and ~0 for identical sets.
  rng = np.random.default_rng(1)
  a = rng.normal(size=(8, 400))
  shift = np.full(400, 0.1)
  assert fvd.frechet_distance(a, a) < 1e-9
  np.testing.assert_allclose(fvd.frechet_distance(a, a + shift), 4.0)
  assert np.isfinite(fvd.frechet_distance(a, rng.normal(size=(8, 400))))
  with pytest.raises(ValueError, match="N >= 2"):
    fvd.frechet_distance(a[:1], a)


def _real_clips() -> np.ndarray:
  """(8, 10, 64, 64, 3) uint8: 272x272 crops of bikes.mp4 shots at 64x64."""
  starts = (0, 40, 60, 100, 140, 160, 195, 215)
  clips = np.zeros((NUM_CLIPS, FRAMES, SIZE, SIZE, 3), np.uint8)
  for k, start in enumerate(starts):
    frames = real_clips.read_frames("bikes.mp4", range(start, start + FRAMES))
    for t, frame in enumerate(frames):
      crop = frame[:, 46 * k : 46 * k + 272]
      clips[k, t] = cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
  return clips


def _add_noise(clips, std, seed):
  noise = np.random.default_rng(seed).normal(0, std, clips.shape)
  return np.clip(clips + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def feats():
  """I3D features of the clean clips and of noisy copies, one batched call."""
  clean = _real_clips()
  noisy = [_add_noise(clean, std, seed) for seed, std in enumerate(NOISE_STDS)]
  all_feats = i3d.i3d_features(np.concatenate([clean, *noisy]), batch_size=8)
  return clean, np.split(all_feats, 1 + len(NOISE_STDS))


def test_fvd_is_zero_for_identical_sets(feats):
  clean, (f_clean, *_) = feats
  assert f_clean.shape == (NUM_CLIPS, 400)
  assert fvd.frechet_distance(f_clean, f_clean) < 1e-6


def test_fvd_is_symmetric(feats):
  _, (f_clean, f_noisy, *_) = feats
  np.testing.assert_allclose(
    fvd.frechet_distance(f_clean, f_noisy),
    fvd.frechet_distance(f_noisy, f_clean),
    rtol=1e-9,
  )


def test_fvd_grows_with_noise(feats):
  _, (f_clean, *f_noisy) = feats
  distances = [fvd.frechet_distance(f_clean, f) for f in f_noisy]
  assert distances[0] > 1.0, distances
  assert all(a < b for a, b in zip(distances, distances[1:])), distances


def test_fvd_ignores_clip_order_and_batching(feats):
  # Shuffled clips, run in batches of 3 (the last one padded): the same
  # per-clip features, hence the same FVD.
  clean, (f_clean, f_noisy, *_) = feats
  order = np.random.default_rng(0).permutation(NUM_CLIPS)
  f_shuffled = i3d.i3d_features(clean[order], batch_size=3)
  np.testing.assert_allclose(f_shuffled, f_clean[order], atol=1e-4)
  np.testing.assert_allclose(
    fvd.frechet_distance(f_shuffled, f_noisy),
    fvd.frechet_distance(f_clean, f_noisy),
    rtol=1e-4,
  )


def test_fvd_passes_batches_and_params_to_i3d(monkeypatch):
  # The end-to-end helper's plumbing, without the network: features are a
  # fixed function of each clip's mean brightness.
  calls = []

  def fake_features(videos, batch_size, params):
    calls.append((len(videos), batch_size, params))
    means = np.asarray(videos, np.float64).mean(axis=(1, 2, 3, 4))
    return np.stack([means, means**2], axis=1)

  monkeypatch.setattr(i3d, "i3d_features", fake_features)
  videos = np.random.default_rng(0).integers(0, 255, (6, 9, 8, 8, 3))
  assert fvd.fvd(videos, videos[::-1], batch_size=4, params="p") < 1e-6
  assert calls == [(6, 4, "p"), (6, 4, "p")]


def test_features_sharded_over_fake_devices_match(feats):
  # The data-parallel path an evaluation over a mesh takes: each batch of 8
  # is split over the 8 fake CPU devices.
  from ii2v_jax.parallel import sharding

  clean, (f_clean, *_) = feats
  mesh = sharding.make_mesh()
  assert mesh.shape["data"] == 8
  f_sharded = i3d.i3d_features(
    clean, batch_size=8, sharding=sharding.batch_sharding(mesh)
  )
  np.testing.assert_allclose(f_sharded, f_clean, atol=1e-4)
