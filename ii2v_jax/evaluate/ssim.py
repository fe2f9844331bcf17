"""SSIM and PSNR in two flavours (REFERENCE §9.4), batched, in JAX.

Both use an 11x11 Gaussian window (sigma 1.5, taps -5..5, normalised),
constants C1 = (0.01 R)^2 and C2 = (0.03 R)^2, population (co)variances
E[xy] - E[x]E[y] and the 'valid' region only (no padding).

1. `*_pl09`: what II2V reports, pytorch-lightning 0.9's functional `ssim` /
   `psnr` over one batch of frames. The data range R is taken from the batch,
   max(max - min of pred, max - min of target); SSIM is the mean of the map
   over every pixel, channel and frame; PSNR is 10 log10(R^2 / MSE) with ONE
   MSE pooled over the whole batch. Both depend on what else is in the batch
   and the pooled PSNR is below the mean of per-frame PSNRs.
2. `*_per_frame`: the standard definitions, one value per frame, with a
   FIXED data range. Convention: frames are RGB in [-1, 1] and R = 2, which
   equals R = 1 on (x + 1) / 2 in [0, 1] (REFERENCE §9.4's "L = 1"; SSIM and
   PSNR only see x / R). Pass data_range=255 for uint8 frames. SSIM equals
   scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
   use_sample_covariance=False, channel_axis=-1, data_range=R)`: skimage
   filters the whole image and crops 5 pixels per side, which leaves exactly
   the valid region.

Frames are (..., H, W, C) with H, W >= 11; leading axes are batch axes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
_MSE_FLOOR = 1e-10  # Keeps per-frame PSNR finite for identical frames.


def gaussian_taps(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
  """(size,) normalised 1-D Gaussian taps centred on the middle tap."""
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2
  taps = np.exp(-(x**2) / (2 * sigma**2))
  return (taps / taps.sum()).astype(np.float32)


def _valid_blur(x_nhwc: jax.Array) -> jax.Array:
  """Separable Gaussian filter, 'valid': (N, H, W, C) -> (N, H-10, W-10, C).

  The 2-D window is the outer product of the 1-D taps, so two 1-D passes
  equal the reference's 2-D depthwise conv up to summation order.
  """
  taps = gaussian_taps()
  h, w = x_nhwc.shape[1] - WINDOW + 1, x_nhwc.shape[2] - WINDOW + 1
  rows = sum(taps[k] * x_nhwc[:, k : k + h] for k in range(WINDOW))
  return sum(taps[k] * rows[:, :, k : k + w] for k in range(WINDOW))


def _ssim_map(a_nhwc, b_nhwc, data_range) -> jax.Array:
  """(N, H-10, W-10, C) SSIM map of float32 frames, R a scalar."""
  if min(a_nhwc.shape[1:3]) < WINDOW:
    raise ValueError(f"Frames need H, W >= {WINDOW}, got {a_nhwc.shape}.")
  c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
  # One blur of the five maps stacked along channels.
  stacked = jnp.concatenate(
    [a_nhwc, b_nhwc, a_nhwc * a_nhwc, b_nhwc * b_nhwc, a_nhwc * b_nhwc], -1
  )
  mu_a, mu_b, e_aa, e_bb, e_ab = jnp.split(_valid_blur(stacked), 5, axis=-1)
  var_a, var_b = e_aa - mu_a * mu_a, e_bb - mu_b * mu_b
  cov_ab = e_ab - mu_a * mu_b
  num = (2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)
  den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
  return num / den


def _flatten(a, b) -> tuple[jax.Array, jax.Array, tuple[int, ...]]:
  """(..., H, W, C) pair -> float32 (N, H, W, C) pair and the lead shape."""
  a, b = jnp.asarray(a), jnp.asarray(b)
  if a.shape != b.shape or a.ndim < 3:
    raise ValueError(f"Need equal (..., H, W, C) shapes: {a.shape}, {b.shape}")
  lead = a.shape[:-3]
  a = jnp.reshape(a, (-1, *a.shape[-3:])).astype(jnp.float32)
  b = jnp.reshape(b, (-1, *b.shape[-3:])).astype(jnp.float32)
  return a, b, lead


def ssim_per_frame(a, b, data_range: float = 2.0) -> jax.Array:
  """Standard SSIM of each frame pair.

  Args:
    a: (..., H, W, C) frames, [-1, 1] by default.
    b: Same shape as `a`.
    data_range: R; 2 for [-1, 1] (default), 1 for [0, 1], 255 for uint8.

  Returns:
    (...) float32: the mean of the valid SSIM map over pixels and channels.
  """
  a, b, lead = _flatten(a, b)
  return jnp.reshape(jnp.mean(_ssim_map(a, b, data_range), (1, 2, 3)), lead)


def psnr_per_frame(a, b, data_range: float = 2.0) -> jax.Array:
  """Standard PSNR (dB) of each frame pair, 10 log10(R^2 / MSE_frame).

  Args and shapes as for `ssim_per_frame`; MSE is floored at 1e-10 so
  identical frames give a large finite value (100 dB + 20 log10 R).
  """
  a, b, lead = _flatten(a, b)
  mse = jnp.maximum(jnp.mean(jnp.square(a - b), axis=(1, 2, 3)), _MSE_FLOOR)
  return jnp.reshape(10 * jnp.log10(data_range**2 / mse), lead)


def _pl09_inputs(pred, target):
  """To [0, 1] as II2V did, (x + 1) / 2, and the batch data range R."""
  pred, target, _ = _flatten(pred, target)
  pred, target = (pred + 1) / 2, (target + 1) / 2
  data_range = jnp.maximum(
    jnp.max(pred) - jnp.min(pred), jnp.max(target) - jnp.min(target)
  )
  return pred, target, data_range


def ssim_pl09(pred, target) -> jax.Array:
  """SSIM as pytorch-lightning 0.9 computed it for II2V: one batch value.

  Args:
    pred: (..., H, W, C) predicted frames in [-1, 1]; all leading axes (e.g.
      B and T) form the one batch the reference passed per call.
    target: Ground-truth frames, same shape.

  Returns:
    () float32: the SSIM map averaged over every element, with R from the
    batch.
  """
  pred, target, data_range = _pl09_inputs(pred, target)
  return jnp.mean(_ssim_map(pred, target, data_range))


def psnr_pl09(pred, target) -> jax.Array:
  """PSNR (dB) as pytorch-lightning 0.9 computed it: one pooled batch value.

  Args as for `ssim_pl09`. Returns () float32: 10 log10(R^2 / MSE) with R
  from the batch and one MSE over all elements (no floor, as in the
  reference: identical batches give +inf).
  """
  pred, target, data_range = _pl09_inputs(pred, target)
  mse = jnp.mean(jnp.square(pred - target))
  return 10 * jnp.log10(jnp.square(data_range) / mse)
