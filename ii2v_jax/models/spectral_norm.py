"""Spectral-normalised Conv3d, as torch.nn.utils.spectral_norm (dim 0).

torch keeps two buffers per conv, u (O,) and v (I*kt*kh*kw,), and uses the
weight divided by sigma = u^T W v, with W the weight reshaped to
(O, I*kt*kh*kw) in torch's (O, I, kt, kh, kw) order. In train mode each
forward first does one power iteration and writes u, v back; in eval mode the
stored u, v are used as they are. Our kernel is stored (kt, kh, kw, I, O) and
is transposed before flattening, so a converted torch `weight_v` is usable as
it is (REFERENCE.md §5.3-5.4).
"""

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

SN_EPS = 1e-12
DN_3D = ("NDHWC", "DHWIO", "NDHWC")


class SpectralState(nnx.Variable):
  """Power-iteration vectors u, v of a spectral-normalised conv.

  Not an `nnx.Param`: like torch's buffers they are neither counted nor
  optimised, and no gradient reaches them.
  """


def l2_normalize(x: jax.Array, eps: float = SN_EPS) -> jax.Array:
  """torch F.normalize(x, dim=0, eps): x / max(||x||_2, eps)."""
  return x / jnp.maximum(jnp.linalg.norm(x), eps)


def torch_matrix(kernel: jax.Array) -> jax.Array:
  """(kt, kh, kw, I, O) kernel -> torch's (O, I*kt*kh*kw) weight matrix."""
  n = kernel.ndim
  perm = (n - 1, n - 2, *range(n - 2))
  return jnp.transpose(kernel, perm).reshape(kernel.shape[-1], -1)


def _mv(a: jax.Array, b: jax.Array) -> jax.Array:
  # Full float32: TF32/bf16 matvecs would bias sigma.
  return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def power_iteration(
  w_mat: jax.Array, u: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """One torch power step: v = n(W^T u), u = n(W v). Returns (u, v)."""
  v = l2_normalize(_mv(w_mat.T, u))
  return l2_normalize(_mv(w_mat, v)), v


class SNConv3d(nnx.Module):
  """Bias-free Conv3d with spectral norm and orthogonal init (torch style).

  Attributes:
    kernel: nnx.Param (kt, kh, kw, I, O), torch `weight_orig` permuted by
      (2, 3, 4, 1, 0); each output filter is orthonormal at init (torch
      `orthogonal_` on the weight flattened to (O, rest)).
    u: SpectralState (O,), torch `weight_u`.
    v: SpectralState (I*kt*kh*kw,), torch `weight_v` (torch flattening order).
  """

  def __init__(
    self,
    in_ch: int,
    out_ch: int,
    kernel_size: tuple[int, int, int] = (3, 3, 3),
    *,
    strides: tuple[int, int, int] = (1, 1, 1),
    padding: tuple[tuple[int, int], ...] = ((1, 1),) * 3,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    shape = (*kernel_size, in_ch, out_ch)
    # Orthonormal columns of the (kt*kh*kw*I, O) matrix = orthonormal output
    # filters, whatever order the other axes are flattened in.
    init = nnx.initializers.orthogonal()
    self.kernel = nnx.Param(init(rngs.params(), shape, jnp.float32))
    n_in = in_ch * kernel_size[0] * kernel_size[1] * kernel_size[2]
    self.u = SpectralState(
      l2_normalize(jax.random.normal(rngs.params(), (out_ch,)))
    )
    self.v = SpectralState(
      l2_normalize(jax.random.normal(rngs.params(), (n_in,)))
    )
    self.strides = tuple(strides)
    self.padding = tuple(tuple(p) for p in padding)
    self.dtype = dtype

  def sigma(self, *, update_stats: bool) -> jax.Array:
    """u^T W v; with `update_stats`, after one power step stored in u, v.

    Gradients reach the kernel through W only: torch computes u and v
    under no_grad.
    """
    w_mat = torch_matrix(self.kernel[...])
    u, v = self.u[...], self.v[...]
    if update_stats:
      u, v = power_iteration(lax.stop_gradient(w_mat), u)
      self.u[...] = u
      self.v[...] = v
    u, v = lax.stop_gradient(u), lax.stop_gradient(v)
    return jnp.dot(u, _mv(w_mat, v), precision=lax.Precision.HIGHEST)

  def normalized_kernel(self, *, update_stats: bool) -> jax.Array:
    """kernel / sigma, float32, (kt, kh, kw, I, O)."""
    return self.kernel[...] / self.sigma(update_stats=update_stats)

  def __call__(self, x_bthwc: jax.Array, *, update_stats: bool) -> jax.Array:
    """(B, T, H, W, I) -> (B, T', H', W', O) in the compute dtype."""
    kernel = self.normalized_kernel(update_stats=update_stats)
    return lax.conv_general_dilated(
      x_bthwc.astype(self.dtype),
      kernel.astype(self.dtype),
      self.strides,
      self.padding,
      dimension_numbers=DN_3D,
    )
