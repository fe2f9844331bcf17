"""Frechet Video Distance (REFERENCE §9.2).

FVD = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) over the I3D
features of `i3d.py` (time-averaged Kinetics-400 logits), with unbiased
covariances, all in float64 on the host.

The trace of the matrix square root uses the symmetric form
tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), with both roots taken by `eigh`. The
two traces are equal in exact arithmetic (the products are similar
matrices), but the symmetric one is the root of a symmetric PSD matrix: real,
no complex round-off parts, no failure on singular covariances (fewer clips
than the 400 feature dims, as in small evaluations). It is also the
algorithm of the reference's
`tfgan.eval.frechet_classifier_distance_from_activations`, which takes the
roots by SVD (the same decomposition for PSD matrices) and does not root
values below 1e-10 (it keeps them, we set them to 0: a difference below
1e-10 each). Rooting them would turn the ~1e-16 round-off eigenvalues of a
singular covariance's null space into ~1e-8 each, hundreds of them.
"""

from __future__ import annotations

import numpy as np

from ii2v_jax.pretrained import i3d

_EIG_FLOOR = 1e-10  # tfgan's threshold: smaller eigenvalues are round-off.


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  """Square root of a symmetric PSD matrix, eigenvalues < 1e-10 set to 0."""
  eigvals, eigvecs = np.linalg.eigh((matrix + matrix.T) / 2)
  return (eigvecs * _floored_sqrt(eigvals)) @ eigvecs.T


def _floored_sqrt(eigvals: np.ndarray) -> np.ndarray:
  return np.sqrt(np.where(eigvals < _EIG_FLOOR, 0.0, eigvals))


def trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
  """tr((S_a S_b)^(1/2)) of two PSD (D, D) matrices, in float64."""
  root_a = _psd_sqrt(np.asarray(sigma_a, np.float64))
  inner = root_a @ np.asarray(sigma_b, np.float64) @ root_a
  eigvals = np.linalg.eigvalsh((inner + inner.T) / 2)
  return float(np.sum(_floored_sqrt(eigvals)))


def feature_stats(feats_nd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean (D,) and unbiased covariance (D, D) of (N, D) features, float64."""
  feats = np.asarray(feats_nd, np.float64)
  if feats.ndim != 2 or feats.shape[0] < 2:
    raise ValueError(f"Need (N >= 2, D) features, got {feats.shape}.")
  return feats.mean(axis=0), np.cov(feats, rowvar=False)


def frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b) -> float:
  """Frechet distance of the Gaussians N(mu_a, sigma_a), N(mu_b, sigma_b)."""
  mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
  sigma_a = np.asarray(sigma_a, np.float64)
  sigma_b = np.asarray(sigma_b, np.float64)
  mean_term = float(np.sum(np.square(mu_a - mu_b)))
  trace_term = float(np.trace(sigma_a) + np.trace(sigma_b))
  distance = mean_term + trace_term - 2 * trace_sqrt_product(sigma_a, sigma_b)
  return max(distance, 0.0)  # Round-off can leave -1e-12 for equal sets.


def frechet_distance(feats_a_nd, feats_b_nd) -> float:
  """Frechet distance between two feature sets.

  Args:
    feats_a_nd: (N_a, D) features, N_a >= 2.
    feats_b_nd: (N_b, D) features, N_b >= 2.

  Returns:
    The distance, a float >= 0 (0 for identical sets, up to round-off).
  """
  return frechet_distance_from_stats(
    *feature_stats(feats_a_nd), *feature_stats(feats_b_nd)
  )


def fvd(
  videos_a_bthwc, videos_b_bthwc, batch_size: int = 16, params=None
) -> float:
  """FVD between two sets of uint8 clips.

  The reference protocol: 976 generated vs 976 real clips of 10 frames
  (x_1..x_10) at the stored resolution, uint8 by truncation; both sets go
  through the same TF1 bilinear resize to 224x224 inside `i3d`.

  Args:
    videos_a_bthwc: (N_a, T, H, W, 3) uint8 RGB, T >= 9.
    videos_b_bthwc: (N_b, T', H', W', 3) uint8 RGB, T' >= 9.
    batch_size: Clips per jitted I3D call (the reference used 16).
    params: From `i3d.load_i3d_params()`; None loads the packaged weights.

  Returns:
    The FVD, a float >= 0.
  """
  feats_a = i3d.i3d_features(videos_a_bthwc, batch_size, params)
  feats_b = i3d.i3d_features(videos_b_bthwc, batch_size, params)
  return frechet_distance(feats_a, feats_b)
