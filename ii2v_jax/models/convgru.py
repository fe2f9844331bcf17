"""ConvGRU fusion block F of II2V (REFERENCE.md §3), NHWC layout.

Each gate keeps ONE torch-shaped kernel (3, 3, in + hid, hid), so parameter
counts and checkpoint conversion are exact, but it is applied separably:
W * [x; h] = W[:, :, :in] * x + W[:, :, in:] * h. The input half of all three
gates is one fused conv, the hidden half of z and r another. For cell 0 the
input (the poke code) is constant over a rollout, so its input half can be
computed once per rollout (DESIGN.md, ~18 % of the rollout FLOPs).

Gate arithmetic and the hidden state are float32 whatever the compute dtype:
it is cheap elementwise work and keeps bf16 rounding out of the recurrence.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from ii2v_jax.models import winograd
from ii2v_jax.models.layers import conv3x3, make_conv, make_conv_up

# Cell kernels prepared once per rollout: fused, sliced, cast to compute dtype.
CellKernels = dict[str, jax.Array]


def _gate_init() -> dict:
  return {
    "kernel_init": nnx.initializers.orthogonal(),
    "bias_init": nnx.initializers.zeros_init(),
  }


class ConvGRUCell(nnx.Module):
  """One ConvGRU cell; optional x2 up-sampling of its input (`up_gate`).

  z = sigmoid(W_z * [x; h]), r = sigmoid(W_r * [x; h]),
  h~ = tanh(W_o * [x; r h]), h' = (1 - z) h + z h~.
  """

  def __init__(
    self,
    input_size: int,
    hidden_size: int,
    *,
    upsample: bool = False,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.input_size = input_size
    self.hidden_size = hidden_size
    self.dtype = dtype
    n_in = input_size + hidden_size
    gate = lambda: make_conv(
      n_in, hidden_size, dtype=dtype, rngs=rngs, **_gate_init()
    )
    self.reset_gate = gate()
    self.update_gate = gate()
    self.out_gate = gate()
    self.up_gate = (
      make_conv_up(
        input_size, input_size, dtype=dtype, rngs=rngs, **_gate_init()
      )
      if upsample
      else None
    )

  def kernels(self) -> CellKernels:
    """Fused gate kernels; build once per rollout, outside the scan.

    Returns:
      x: (3, 3, in, 3*hid) input halves of [z, r, o]; x_bias: (3*hid,)
      float32; zr: (3, 3, hid, 2*hid) hidden halves of [z, r]; o: (3, 3, hid,
      hid) hidden half of the candidate gate; x_winograd, zr_winograd,
      o_winograd: their Winograd transforms (float32 compute only).
    """
    n = self.input_size
    gates = (self.update_gate, self.reset_gate, self.out_gate)
    k_z, k_r, k_o = (g.kernel[...] for g in gates)
    kern = {
      "x": jnp.concatenate([k[:, :, :n] for k in (k_z, k_r, k_o)], -1).astype(
        self.dtype
      ),
      "x_bias": jnp.concatenate([g.bias[...] for g in gates]),
      "zr": jnp.concatenate([k_z[:, :, n:], k_r[:, :, n:]], -1).astype(
        self.dtype
      ),
      "o": k_o[:, :, n:].astype(self.dtype),
    }
    for name in ("x", "zr", "o"):  # Outside the scan: once per rollout.
      if winograd.worth_it(kern[name]):
        kern[f"{name}_winograd"] = winograd.kernel_transform(kern[name])
    return kern

  @staticmethod
  def _conv(kern: CellKernels, name: str, x: jax.Array, dtype) -> jax.Array:
    return conv3x3(x, kern[name], dtype, kern.get(f"{name}_winograd"))

  def input_gates(self, kern: CellKernels, x_bhwi: jax.Array) -> jax.Array:
    """Input-half gate pre-activations, biases included.

    Args:
      kern: from `kernels()`.
      x_bhwi: (B, h, w, in), or (B, h/2, w/2, in) when the cell up-samples.

    Returns:
      (B, h, w, 3*hid) float32, channel blocks [z, r, o].
    """
    if self.up_gate is not None:
      x_bhwi = self.up_gate(x_bhwi)
    xc = self._conv(kern, "x", x_bhwi, self.dtype).astype(jnp.float32)
    return xc + kern["x_bias"]

  def update(
    self, kern: CellKernels, xc_bhw3k: jax.Array, h_bhwk: jax.Array
  ) -> jax.Array:
    """One GRU update from input pre-activations and the hidden state.

    Args:
      kern: from `kernels()`.
      xc_bhw3k: (B, h, w, 3*hid) from `input_gates`.
      h_bhwk: (B, h, w, hid) hidden state.

    Returns:
      (B, h, w, hid) float32 new hidden state.
    """
    k = self.hidden_size
    h = h_bhwk.astype(jnp.float32)
    zr = self._conv(kern, "zr", h, self.dtype).astype(jnp.float32)
    z = jax.nn.sigmoid(xc_bhw3k[..., :k] + zr[..., :k])
    r = jax.nn.sigmoid(xc_bhw3k[..., k : 2 * k] + zr[..., k:])
    ho = self._conv(kern, "o", r * h, self.dtype).astype(jnp.float32)
    h_tilde = jnp.tanh(xc_bhw3k[..., 2 * k :] + ho)
    return (1.0 - z) * h + z * h_tilde

  def __call__(self, x_bhwi: jax.Array, h_bhwk: jax.Array) -> jax.Array:
    """(input, hidden) -> (B, h, w, hid) new hidden state (float32)."""
    kern = self.kernels()
    return self.update(kern, self.input_gates(kern, x_bhwi), h_bhwk)


class ConvGRU(nnx.Module):
  """Stack of cells, one per level in GRU order (deep to shallow).

  Cell 0 reads the external input; cell i > 0 reads the NEW hidden state of
  cell i - 1 (up-sampled by its `up_gate` where the resolution doubles).
  """

  def __init__(
    self,
    input_size: int,
    hidden_sizes: list[int],
    upsample: list[bool],
    *,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    in_sizes = [input_size] + list(hidden_sizes[:-1])
    self.cells = nnx.List(
      [
        ConvGRUCell(i, h, upsample=u, dtype=dtype, rngs=rngs)
        for i, h, u in zip(in_sizes, hidden_sizes, upsample, strict=True)
      ]
    )

  def kernels(self) -> list[CellKernels]:
    """Per-cell fused kernels; see `ConvGRUCell.kernels`."""
    return [cell.kernels() for cell in self.cells]

  def input_gates0(
    self, kerns: list[CellKernels], x_bhwc: jax.Array
  ) -> jax.Array:
    """Cell 0 input pre-activations (B, h, w, 3*hid0): reusable per step."""
    return self.cells[0].input_gates(kerns[0], x_bhwc)

  def step(
    self,
    kerns: list[CellKernels],
    hs: list[jax.Array],
    *,
    x_bhwc: jax.Array | None = None,
    xc0_bhw3k: jax.Array | None = None,
  ) -> list[jax.Array]:
    """Updates every cell once. Pure in its arguments (safe inside scan).

    Args:
      kerns: from `kernels()`.
      hs: hidden states in GRU order, each (B, h_i, w_i, hid_i).
      x_bhwc: the external input; used when `xc0_bhw3k` is None.
      xc0_bhw3k: precomputed `input_gates0(kerns, x_bhwc)`.

    Returns:
      New hidden states in GRU order, float32.
    """
    new = []
    for i, (cell, kern, h) in enumerate(
      zip(self.cells, kerns, hs, strict=True)
    ):
      if i > 0:
        xc = cell.input_gates(kern, new[-1])
      elif xc0_bhw3k is None:
        xc = cell.input_gates(kern, x_bhwc)
      else:
        xc = xc0_bhw3k
      new.append(cell.update(kern, xc, h))
    return new

  def __call__(self, x_bhwc: jax.Array, hs: list[jax.Array]) -> list[jax.Array]:
    """One step: (input (B,16,16,C), states GRU order) -> new states."""
    return self.step(self.kernels(), hs, x_bhwc=x_bhwc)
