"""RAFT's all-pairs correlation pyramid, its lookup, and flow upsampling.

Bilinear lookup is written as two small contractions with "hat" weights
max(0, 1 - |p - u|): for a sample at p this is exactly bilinear
interpolation with zeros outside the map, i.e. torch's `grid_sample(...,
align_corners=True, padding_mode="zeros")` in pixel coordinates, with no
gathers (matmul-friendly on every backend).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np


def build_pyramid(
  fmap1_nhwc: jax.Array, fmap2_nhwc: jax.Array, num_levels: int, precision
) -> list[jax.Array]:
  """All-pairs correlation, average-pooled over frame 2 `num_levels` - 1 x.

  Args:
    fmap1_nhwc: (N, h, w, C) features of frame 1.
    fmap2_nhwc: (N, h, w, C) features of frame 2.
    num_levels: pyramid levels.
    precision: matmul precision (None: backend default).

  Returns:
    Levels l = 0..L-1 of shape (N, h, w, h >> l, w >> l): the correlation
    of each frame-1 pixel with (2^l-pooled) frame-2 pixels, / sqrt(C).
  """
  scale = 1.0 / math.sqrt(fmap1_nhwc.shape[-1])
  corr = jnp.einsum(
    "nijc,nklc->nijkl", fmap1_nhwc, fmap2_nhwc, precision=precision
  )
  levels = [corr * scale]
  for _ in range(num_levels - 1):
    c = levels[-1]
    h2, w2 = c.shape[-2] // 2, c.shape[-1] // 2
    # torch avg_pool2d(2, 2) drops an odd last row / column.
    c = c[..., : 2 * h2, : 2 * w2].reshape(*c.shape[:3], h2, 2, w2, 2)
    levels.append(c.mean(axis=(-3, -1)))
  return levels


def _hat_weights(centre_nhw: jax.Array, radius: int, size: int) -> jax.Array:
  """(N,h,w,2r+1,size) bilinear weights of samples centre + (-r..r)."""
  offsets = jnp.arange(-radius, radius + 1, dtype=centre_nhw.dtype)
  grid = jnp.arange(size, dtype=centre_nhw.dtype)
  pos = centre_nhw[..., None, None] + offsets[:, None]
  return jax.nn.relu(1.0 - jnp.abs(pos - grid))


def lookup(
  pyramid: list[jax.Array], coords_nhw2: jax.Array, radius: int, precision
) -> jax.Array:
  """Correlation features around `coords` in every pyramid level.

  Args:
    pyramid: output of `build_pyramid`.
    coords_nhw2: (N, h, w, 2) positions (x, y) in frame-2 1/8-res pixels.
    radius: neighbourhood radius r (a (2r+1)^2 square per level).
    precision: matmul precision.

  Returns:
    (N, h, w, L * (2r+1)^2); within a level, channel a * (2r+1) + b holds
    the sample at (x + a - r, y + b - r) (torchvision's and the original's
    ordering: the x offset is the slow index).
  """
  feats = []
  for level, corr in enumerate(pyramid):
    centre = coords_nhw2 / (2**level)
    wx = _hat_weights(centre[..., 0], radius, corr.shape[-1])
    wy = _hat_weights(centre[..., 1], radius, corr.shape[-2])
    rows = jnp.einsum("nijvu,nijau->nijav", corr, wx, precision=precision)
    win = jnp.einsum("nijav,nijbv->nijab", rows, wy, precision=precision)
    feats.append(win.reshape(*win.shape[:3], -1))
  return jnp.concatenate(feats, axis=-1)


def coords_grid(n: int, h: int, w: int) -> jax.Array:
  """(N, h, w, 2) pixel coordinates (x, y)."""
  ys, xs = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32),
    jnp.arange(w, dtype=jnp.float32),
    indexing="ij",
  )
  return jnp.broadcast_to(jnp.stack([xs, ys], axis=-1), (n, h, w, 2))


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) linear interpolation with align_corners=True."""
  scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
  src = np.arange(n_out, dtype=np.float64)[:, None] * scale
  w = np.maximum(0.0, 1.0 - np.abs(src - np.arange(n_in)[None, :]))
  return w.astype(np.float32)


def upsample_bilinear(flow_nhw2: jax.Array, factor: int = 8) -> jax.Array:
  """factor x bilinear (align_corners=True) upsampling of flow, in pixels.

  Args:
    flow_nhw2: (N, h, w, 2) flow in 1/factor-res pixels.
    factor: upsampling factor.

  Returns:
    (N, factor h, factor w, 2) flow in full-res pixels.
  """
  _, h, w, _ = flow_nhw2.shape
  ay = jnp.asarray(_interp_matrix(h, factor * h))
  ax = jnp.asarray(_interp_matrix(w, factor * w))
  up = jnp.einsum(
    "Yh,nhwc,Xw->nYXc",
    ay,
    flow_nhw2,
    ax,
    precision=jax.lax.Precision.HIGHEST,
  )
  return factor * up


def upsample_convex(
  flow_nhw2: jax.Array, mask_nhwk: jax.Array, factor: int = 8
) -> jax.Array:
  """RAFT's convex upsampling: each fine pixel is a softmax-weighted
  combination of the 3x3 coarse neighbourhood of its coarse pixel.

  Args:
    flow_nhw2: (N, h, w, 2) flow in 1/factor-res pixels.
    mask_nhwk: (N, h, w, 9 * factor^2) logits, channel k * f^2 + a * f + b
      weighting neighbour k (row-major 3x3) for fine offset (row a, col b).
    factor: upsampling factor.

  Returns:
    (N, factor h, factor w, 2) flow in full-res pixels.
  """
  n, h, w, _ = flow_nhw2.shape
  mask = mask_nhwk.reshape(n, h, w, 9, factor, factor)
  mask = jax.nn.softmax(mask, axis=3)
  padded = jnp.pad(factor * flow_nhw2, ((0, 0), (1, 1), (1, 1), (0, 0)))
  nbrs = jnp.stack(
    [padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)],
    axis=3,
  )
  up = jnp.einsum(
    "nhwkab,nhwkc->nhawbc", mask, nbrs, precision=jax.lax.Precision.HIGHEST
  )
  return up.reshape(n, factor * h, factor * w, 2)
