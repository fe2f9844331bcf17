"""3x3 stride-1 convolutions in Winograd form F(2x2, 3x3), forward only.

Each 2x2 output tile comes from a 4x4 input tile through 16 channel
matmuls instead of 36 (2.25x fewer multiplies); the input, kernel and
output transforms are sums with constant weights. On this project's CPU
the forward of the ConvGRU's and decoder's convs ran 1.2-1.7x faster
(docs/performance.md). The gradient is the plain convolution's: autodiff
through the transforms ran 2x slower than XLA's own conv gradients, so
`conv3x3` differentiates as the direct conv does. Results equal the direct
conv within float32 rounding (the transforms add a few roundings).
"""

import os

import jax
import jax.numpy as jnp
from jax import lax

# Lavin & Gray's F(2x2, 3x3): Y = A^T [(G g G^T) * (B^T d B)] A.
_BT = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
_AT = ((1, 1, 1, 0), (0, 1, -1, -1))


def direct(x_bhwi: jax.Array, kernel_hwio: jax.Array) -> jax.Array:
  """The plain conv with padding 1: the reference and the gradient."""
  return lax.conv_general_dilated(
    x_bhwi, kernel_hwio, (1, 1), ((1, 1), (1, 1)),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )  # fmt: skip


# II2V_WINOGRAD=0 computes every 3x3 conv directly (for comparisons).
ENABLED = os.environ.get("II2V_WINOGRAD", "1") != "0"


def enabled_for(dtype) -> bool:
  """float32 only: bf16 rounding in the transforms adds up."""
  return ENABLED and jnp.dtype(dtype) == jnp.float32


# Below this many output pixels per call, transforming the kernel costs more
# memory traffic than the multiplies it saves (unless a loop reuses it); and
# with few channels the data transforms cost more than the matmuls save (the
# embedded default's 16-64 channel convs trained 10 % slower).
MIN_PIXELS = 2048
MIN_CHANNELS = 128


def worth_it(kernel_hwio: jax.Array) -> bool:
  """float32 compute and at least MIN_CHANNELS in and out."""
  _, _, i, o = kernel_hwio.shape
  return enabled_for(kernel_hwio.dtype) and min(i, o) >= MIN_CHANNELS


def applies(x_bhwi, kernel_hwio, *, kernel_reused: bool = False) -> bool:
  """Even sizes tile exactly; small maps only with a kept transform."""
  b, h, w, _ = x_bhwi.shape
  big = kernel_reused or b * h * w >= MIN_PIXELS
  return (
    worth_it(kernel_hwio)
    and enabled_for(x_bhwi.dtype)
    and h % 2 == 0
    and w % 2 == 0
    and big
  )


def _combine(rows, parts):
  """[sum_j rows[i][j] * parts[j] for each i], for 0/+-1 weights."""
  out = []
  for row in rows:
    acc = None
    for c, p in zip(row, parts, strict=True):
      if c:
        term = p if c == 1 else -p
        acc = term if acc is None else acc + term
    out.append(acc)
  return out


def _g_rows(k0, k1, k2):
  """G applied along one kernel axis, as sums (a dot with a contraction of
  3 ran at 1-3 GFLOP/s here, slower than the convolution it replaces)."""
  return [k0, 0.5 * (k0 + k1 + k2), 0.5 * (k0 - k1 + k2), k2]


def kernel_transform(kernel_hwio: jax.Array) -> jax.Array:
  """(3, 3, I, O) -> (4, 4, I, O): G g G^T, once per set of weights."""
  k = kernel_hwio
  rows = _g_rows(k[0], k[1], k[2])  # rows[u]: (3, I, O)
  return jnp.stack([jnp.stack(_g_rows(r[0], r[1], r[2])) for r in rows])


def _forward(x_bhwi, u_44io):
  b, h, w, _ = x_bhwi.shape
  xp = jnp.pad(x_bhwi, ((0, 0), (1, 1), (1, 1), (0, 0)))
  # d[r][c]: input tiles' element (r, c) for every tile, (B, h/2, w/2, I).
  d = [
    [xp[:, r : r + h : 2, c : c + w : 2] for c in range(4)] for r in range(4)
  ]
  cols = [_combine(_BT, [d[r][c] for r in range(4)]) for c in range(4)]
  v = jnp.stack(
    [jnp.stack(_combine(_BT, [cols[c][i] for c in range(4)])) for i in range(4)]
  )  # (4, 4, B, h/2, w/2, I)
  m = jnp.einsum("uvbhwi,uvio->uvbhwo", v, u_44io)
  rows = [_combine(_AT, [m[i, j] for i in range(4)]) for j in range(4)]
  y = [
    jnp.stack(_combine(_AT, [rows[j][r] for j in range(4)]), axis=3)
    for r in range(2)
  ]  # y[r]: (B, h/2, w/2, 2, O), output rows 2t + r
  return jnp.stack(y, axis=2).reshape(b, h, w, -1)


@jax.custom_vjp
def conv3x3(
  x_bhwi: jax.Array, kernel_hwio: jax.Array, u_44io: jax.Array
) -> jax.Array:
  """(B, H, W, I) * (3, 3, I, O), padding 1 -> (B, H, W, O); H, W even.

  `u_44io` is `kernel_transform(kernel_hwio)`, passed in so that a loop
  (the rollout's scan) transforms its weights once, not on every step.
  The gradient is the direct conv's, all of it through `kernel_hwio`.
  """
  return _forward(x_bhwi, u_44io)


def _fwd(x, k, u):
  return _forward(x, u), (x, k, u)


def _bwd(res, g):
  x, k, u = res
  dx, dk = jax.vjp(direct, x, k)[1](g)
  return dx, dk, jnp.zeros_like(u)


conv3x3.defvjp(_fwd, _bwd)
