"""The warp output head: warping, DIS flow targets, the head, its loss."""

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import default
from ii2v_jax.data import flow_targets, pipeline
from ii2v_jax.models.generator import Generator, count_params, poke_vector
from ii2v_jax.models.warp import backward_warp
from ii2v_jax.training import train, train_step

NARROW = dict(channels=32, poke_channels=8, min_channels=8)


def _textured(seed, shape):
  """Smooth random (..., H, W, 3) texture in [0, 255]: DIS needs gradients."""
  rng = np.random.default_rng(seed)
  noise = rng.uniform(0, 255, shape)
  flat = noise.astype(np.float32).reshape((-1,) + shape[-3:])
  return np.stack([cv2.GaussianBlur(x, (5, 5), 1.5) for x in flat]).reshape(
    shape
  )


def test_backward_warp_matches_cv2_remap_with_replicated_border():
  rng = np.random.default_rng(0)
  image = rng.normal(size=(2, 12, 16, 3)).astype(np.float32)
  flow = rng.normal(scale=3.0, size=(2, 12, 16, 2)).astype(np.float32)
  out = np.asarray(backward_warp(jnp.asarray(image), jnp.asarray(flow)))
  gy, gx = np.mgrid[0:12, 0:16].astype(np.float32)
  for b in range(2):
    want = cv2.remap(
      image[b],
      gx + flow[b, ..., 0],
      gy + flow[b, ..., 1],
      cv2.INTER_LINEAR,
      borderMode=cv2.BORDER_REPLICATE,
    )
    np.testing.assert_allclose(out[b], want, atol=2e-3)


def test_backward_warp_zero_flow_is_identity_and_shift_moves_content():
  image = jnp.asarray(np.arange(2 * 5 * 6 * 1, dtype=np.float32)).reshape(
    2, 5, 6, 1
  )
  zero = jnp.zeros((2, 5, 6, 2))
  np.testing.assert_array_equal(backward_warp(image, zero), image)
  # Sampling one pixel to the left moves the content one pixel right.
  left = zero.at[..., 0].set(-1.0)
  out = backward_warp(image, left)
  np.testing.assert_array_equal(out[:, :, 1:], image[:, :, :-1])
  np.testing.assert_array_equal(out[:, :, 0], image[:, :, 0])  # clamped


def test_backward_warp_has_flow_gradient_and_checks_shapes():
  image = jnp.asarray(_textured(1, (1, 16, 16, 3)))
  grad = jax.grad(lambda f: jnp.sum(backward_warp(image, f) ** 2))(
    jnp.full((1, 16, 16, 2), 0.3)
  )
  assert float(jnp.abs(grad).sum()) > 0
  with pytest.raises(ValueError, match="does not match image"):
    backward_warp(image, jnp.zeros((1, 16, 15, 2)))


def test_backward_flows_track_a_translating_texture():
  """A texture moving 1 px right per frame: frame t samples x0 at -t px."""
  base = _textured(2, (64, 96, 3))
  video = np.stack([np.roll(base, t, axis=1) for t in range(5)])
  video = np.clip(video, 0, 255).astype(np.uint8)
  flows = flow_targets.backward_flows(video)
  assert flows.shape == (4, 64, 96, 2) and flows.dtype == np.float32
  inner = flows[:, 12:-12, 24:-12]  # away from the wrapped border
  for t in range(4):
    np.testing.assert_allclose(
      np.median(inner[t].reshape(-1, 2), axis=0), (-(t + 1), 0.0), atol=0.3
    )


def test_backward_flows_reject_a_single_frame():
  with pytest.raises(ValueError, match="T >= 1"):
    flow_targets.backward_flows(np.zeros((1, 8, 8, 3), np.uint8))


def test_clip_transform_adds_flow_targets_only_for_training():
  rng = np.random.default_rng(0)
  video = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
  example = {"video": video, "flow": np.ones((32, 32, 2), np.float32)}
  out = pipeline.ClipTransform(flow_targets=True)(example, rng)
  np.testing.assert_array_equal(
    out["flow_targets"], flow_targets.backward_flows(video)
  )
  c = default.get_config().data
  c.flow_targets = True
  assert pipeline.transform_from_config(c, train=True).flow_targets
  assert not pipeline.transform_from_config(c, train=False).flow_targets


@pytest.fixture(scope="module")
def warp_gen():
  return Generator(
    resolution=64,
    **NARROW,
    colour_stats=True,
    output_head="warp",
    rngs=nnx.Rngs(0),
  )


def test_warp_head_adds_one_conv_and_starts_as_the_copy(warp_gen):
  plain = Generator(
    resolution=64, **NARROW, colour_stats=True, rngs=nnx.Rngs(0)
  )
  width = warp_gen.dec.motion_conv.in_features
  assert count_params(warp_gen) - count_params(plain) == 9 * width * 3 + 3
  x0 = jnp.tanh(jax.random.normal(jax.random.key(1), (2, 64, 64, 3)))
  poke = jnp.zeros((2, 64, 64, 2)).at[:, 30:33, 20:23].set(3.0)
  video, _, flow = warp_gen.rollout(x0, poke, 2, with_flow=True)
  np.testing.assert_array_equal(flow, 0.0)
  np.testing.assert_allclose(video, jnp.stack([x0, x0], axis=1), atol=1e-6)
  with pytest.raises(ValueError, match="output_head"):
    Generator(resolution=64, **NARROW, output_head="flow", rngs=nnx.Rngs(0))


def test_poke_vector_is_the_mean_over_the_poked_pixels():
  poke = jnp.zeros((3, 16, 16, 2))
  poke = poke.at[0, 4:7, 4:7].set(jnp.array([2.0, -1.0]))
  poke = poke.at[1, 0, 0].set(jnp.array([0.0, 5.0]))
  np.testing.assert_allclose(
    poke_vector(poke), [[2.0, -1.0], [0.0, 5.0], [0.0, 0.0]], atol=1e-6
  )


@pytest.mark.parametrize(
  "bias, poke_uv, shift",
  [
    ((-2.0, 0.0, 0.0), (0.0, 0.0), 2),  # residual: sample 2 px left
    ((0.0, 0.0, 1.0), (3.0, 0.0), 3),  # gain 1: follow a 3 px poke right
    ((0.0, 0.0, 0.5), (4.0, 0.0), 2),  # gain 0.5: half of a 4 px poke
  ],
)
def test_warp_head_moves_x0_along_residual_and_poke(
  warp_gen, bias, poke_uv, shift
):
  gen = nnx.clone(warp_gen)
  gen.dec.motion_conv.bias[...] = jnp.array(bias)
  x0 = jnp.asarray(_textured(3, (1, 64, 64, 3)) / 127.5 - 1.0)
  poke = jnp.zeros((1, 64, 64, 2)).at[0, 30:33, 40:43].set(jnp.array(poke_uv))
  video, _, flow = gen.rollout(x0, poke, 3, with_flow=True)
  assert flow.shape == (1, 3, 64, 64, 2)
  np.testing.assert_allclose(flow[..., 0], -float(shift), atol=1e-6)
  for t in range(3):
    np.testing.assert_allclose(
      video[0, t, :, shift:], x0[0, :, :-shift], atol=1e-5
    )


def test_pixel_head_returns_no_flow():
  plain = Generator(resolution=64, **NARROW, rngs=nnx.Rngs(0))
  x0 = jnp.zeros((1, 64, 64, 3))
  out = plain.rollout(x0, jnp.zeros((1, 64, 64, 2)), 1, with_flow=True)
  assert len(out) == 3 and out[2] is None


def test_training_with_the_warp_head_through_the_gan_phase(
  tiny_data32, tmp_path
):
  """Both programs (plain gradient, then the adversarial vjp) carry flows."""
  from configs import tiny

  c = tiny.get_config()
  c.data.data_dir, c.data.name = tiny_data32
  c.data.resolution = 32
  c.gan.start_iteration = 4  # Iteration 4 is adversarial.
  c.model.colour_stats = True
  c.model.output_head = "warp"
  c.data.flow_targets = True
  c.loss.flow_weight = 1.0
  metrics = train.train_and_evaluate(c, str(tmp_path))
  assert np.isfinite(metrics["loss_flow"]) and metrics["loss_flow"] > 0
  assert np.isfinite(metrics["gan_temporal/loss_d"])
  assert metrics["grad_norm/dyn"] > 0


@pytest.mark.parametrize(
  "head, targets, ok",
  [("pixels", True, False), ("warp", False, False), ("warp", True, True)],
)
def test_flow_loss_needs_the_warp_head_and_targets(head, targets, ok):
  c = default.get_config()
  c.loss.flow_weight = 1.0
  c.model.output_head, c.data.flow_targets = head, targets
  if ok:
    assert train_step.settings_from_config(c).flow_weight == 1.0
  else:
    with pytest.raises(ValueError, match="output_head='warp'"):
      train_step.settings_from_config(c)
