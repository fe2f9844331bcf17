"""Tests of the flow package: DIS estimation, chaining, EPE."""

import cv2
import numpy as np
import pytest

import flow


def _texture(size: int, seed: int = 0) -> np.ndarray:
  """(size, size, 3) float32 smooth random RGB texture in [0, 255]."""
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(0, 255, (size // 6, size // 6, 3)).astype(np.float32)
  fine = rng.uniform(-20, 20, (size // 2, size // 2, 3)).astype(np.float32)
  up = lambda a: cv2.resize(a, (size, size), interpolation=cv2.INTER_CUBIC)
  return np.clip(up(coarse) + up(fine), 0, 255)


def _shifted_pair(size: int, shift_2, seed: int = 0):
  """Crop of a texture and the same crop with content moved by shift (u, v)."""
  big = _texture(size + 40, seed)
  warp = np.float32([[1, 0, shift_2[0]], [0, 1, shift_2[1]]])
  moved = cv2.warpAffine(
    big,
    warp,
    big.shape[1::-1],
    flags=cv2.INTER_CUBIC,
    borderMode=cv2.BORDER_REFLECT,
  )
  crop = lambda a: np.round(a[20 : 20 + size, 20 : 20 + size]).astype(np.uint8)
  return crop(big), crop(moved)


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("preset", ["ultrafast", "medium"])
@pytest.mark.parametrize("min_size", [0, 256])
def test_dis_recovers_translation(size, preset, min_size):
  shift = (2.5, -1.5)
  a, b = _shifted_pair(size, shift)
  flow_hw2 = flow.estimate_flow(a, b, preset=preset, min_size=min_size)
  assert flow_hw2.shape == (size, size, 2) and flow_hw2.dtype == np.float32
  inner_k2 = flow_hw2[8:-8, 8:-8].reshape(-1, 2)
  np.testing.assert_allclose(np.median(inner_k2, 0), shift, atol=0.3)
  assert np.abs(inner_k2 - shift).mean() < 0.3


def test_flow_has_input_resolution_and_direction():
  # Right/down content motion must give positive u/v, also when upscaled.
  a, b = _shifted_pair(64, (3.0, 2.0), seed=1)
  for min_size in (0, 256):
    u, v = np.median(flow.estimate_flow(a, b, min_size=min_size), (0, 1))
    assert 2.5 < u < 3.5 and 1.5 < v < 2.5


def test_batch_matches_single_pairs():
  pairs = [_shifted_pair(64, s, seed=i) for i, s in enumerate([(1, 0), (0, 2)])]
  a_nhw3 = np.stack([p[0] for p in pairs])
  b_nhw3 = np.stack([p[1] for p in pairs])
  batch_nhw2 = flow.estimate_flow(a_nhw3, b_nhw3, preset="fast")
  assert batch_nhw2.shape == (2, 64, 64, 2)
  for i, (a, b) in enumerate(pairs):
    single = flow.estimate_flow(a, b, preset="fast")
    np.testing.assert_array_equal(batch_nhw2[i], single)


@pytest.mark.parametrize(
  "a, b, kwargs, message",
  [
    (np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), {}, "uint8"),
    (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), {}, "shape"),
    (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 4), np.uint8), {}, "3"),
    (
      np.zeros((8, 8, 3), np.uint8),
      np.zeros((8, 9, 3), np.uint8),
      {},
      "differ",
    ),
    (
      np.zeros((2, 8, 8, 3), np.uint8),
      np.zeros((3, 8, 8, 3), np.uint8),
      {},
      "differ",
    ),
    (
      np.zeros((8, 8, 3), np.uint8),
      np.zeros((8, 8, 3), np.uint8),
      {"method": "farneback"},
      "unknown flow method",
    ),
    (
      np.zeros((8, 8, 3), np.uint8),
      np.zeros((8, 8, 3), np.uint8),
      {"preset": "slow"},
      "unknown DIS preset",
    ),
  ],
)
def test_bad_input_raises(a, b, kwargs, message):
  with pytest.raises(ValueError, match=message):
    flow.estimate_flow(a, b, **kwargs)


def test_endpoint_error():
  a = np.zeros((2, 4, 4, 2), np.float32)
  b = np.zeros_like(a)
  b[..., 0], b[..., 1] = 3.0, 4.0
  b[1] = 0.0
  assert flow.endpoint_error(a, b) == pytest.approx(2.5)
  mask = np.zeros((2, 4, 4), bool)
  mask[0, :2] = True
  assert flow.endpoint_error(a, b, mask) == pytest.approx(5.0)
  assert flow.endpoint_error(a[0], b[0], np.ones((4, 4))) == pytest.approx(5)
  with pytest.raises(ValueError, match="no pixel"):
    flow.endpoint_error(a, b, np.zeros((2, 4, 4)))
  with pytest.raises(ValueError, match="shape"):
    flow.endpoint_error(a, b[..., :1])


def test_compose_flows_is_exact_on_linear_fields():
  h = w = 16
  grid_x = np.mgrid[0:h, 0:w][1].astype(np.float32)
  first = np.zeros((h, w, 2), np.float32)
  first[..., 0] = 2.0
  second = np.zeros((h, w, 2), np.float32)
  second[..., 0] = 0.1 * grid_x  # Sampled where the pixel went: x + 2.
  second[..., 1] = -1.0
  total_hw2 = flow.compose_flows(np.stack([first, second]))
  inner = (slice(None), slice(0, w - 3))
  np.testing.assert_allclose(
    total_hw2[inner][..., 0], (2 + 0.1 * (grid_x + 2))[inner], atol=1e-5
  )
  np.testing.assert_allclose(total_hw2[..., 1], -1.0)


def test_chained_flow_follows_a_moving_texture():
  big = _texture(120, seed=3)
  frames = []
  for t in range(5):  # 1.2 px right, 0.6 px up per frame.
    warp = np.float32([[1, 0, 1.2 * t], [0, 1, -0.6 * t]])
    moved = cv2.warpAffine(big, warp, (120, 120), flags=cv2.INTER_CUBIC)
    frames.append(np.round(moved[28:92, 28:92]).astype(np.uint8))
  total_hw2 = flow.estimate_chained_flow(np.stack(frames))
  assert total_hw2.shape == (64, 64, 2)
  np.testing.assert_allclose(
    np.median(total_hw2[10:-10, 10:-10], (0, 1)), (4.8, -2.4), atol=0.3
  )
  with pytest.raises(ValueError, match="T >= 1"):
    flow.estimate_chained_flow(np.stack(frames[:1]))


def test_chained_flow_forwards_method_options():
  video = np.zeros((3, 16, 16, 3), np.uint8)
  # Reaches RAFT, which names its missing option: options are forwarded.
  with pytest.raises(ValueError, match="needs weights"):
    flow.estimate_chained_flow(video, method="raft")
  with pytest.raises(TypeError, match="bogus"):
    flow.estimate_chained_flow(video, bogus=1)
