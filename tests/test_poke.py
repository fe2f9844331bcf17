"""Tests for ii2v_jax.data.poke: the shared poke sampler and poke maps."""

import numpy as np
import pytest

from ii2v_jax.data import poke

S = 64


def _blob_flow(rows, cols, uv, *, noise=0.05, seed=0):
  """(S, S, 2) flow: small noise plus a block of constant vector `uv`."""
  rng = np.random.default_rng(seed)
  flow_hw2 = rng.uniform(-noise, noise, (S, S, 2)).astype(np.float32)
  flow_hw2[rows, cols] = uv
  return flow_hw2


def _picks(flow_hw2, n=40, **kw):
  return [
    poke.sample_poke_location(flow_hw2, np.random.default_rng(i), **kw)
    for i in range(n)
  ]


def test_location_lies_in_the_strongest_motion():
  flow_hw2 = _blob_flow(slice(20, 24), slice(30, 34), (4.0, -3.0))
  mag_hw = np.linalg.norm(flow_hw2, axis=-1)
  picks = _picks(flow_hw2)
  for row, col in picks:
    assert 20 <= row < 24 and 30 <= col < 34
    assert mag_hw[row, col] >= np.quantile(mag_hw, 0.99)
  assert len(set(picks)) > 1  # uniform among candidates, not argmax


def test_location_respects_the_window():
  ps = 3
  # Strongest motion on the border band, weaker motion inside.
  flow_hw2 = _blob_flow(slice(10, 14), slice(10, 14), (2.0, 0.0))
  flow_hw2[:ps] = (9.0, 9.0)
  flow_hw2[:, S - ps :] = (9.0, 9.0)
  for row, col in _picks(flow_hw2, poke_size=ps):
    assert ps <= row < S - ps and ps <= col < S - ps
    assert 10 <= row < 14 and 10 <= col < 14


def test_fg_mask_excludes_stronger_motion_outside_it():
  flow_hw2 = _blob_flow(slice(10, 14), slice(10, 14), (8.0, 0.0))
  flow_hw2[40:44, 40:44] = (0.0, 3.0)
  mask_hw = np.zeros((S, S), bool)
  mask_hw[32:, 32:] = True
  for row, col in _picks(flow_hw2, fg_mask_hw=mask_hw):
    assert 40 <= row < 44 and 40 <= col < 44
  # Without the mask both blobs clear mu + 2 sigma.
  assert any(10 <= row < 14 for row, _ in _picks(flow_hw2))


def test_first_fallback_uses_unmasked_magnitude():
  # Empty mask: a_f = 0, mu = sigma = 0, so only the fallback a > 0 finds
  # the moving pixels.
  flow_hw2 = np.zeros((S, S, 2), np.float32)
  flow_hw2[30:33, 20:23] = (1.0, 1.0)
  empty_hw = np.zeros((S, S), bool)
  for row, col in _picks(flow_hw2, fg_mask_hw=empty_hw):
    assert 30 <= row < 33 and 20 <= col < 23


def test_fallback_levels_in_order():
  # Bands of a = 1 (20%), 0.5 (30%), 0 (50%): nothing exceeds mu + 2 sigma,
  # only a = 1 exceeds mu + sigma although a = 0.5 exceeds mu.
  flow_hw2 = np.zeros((S, S, 2), np.float32)
  flow_hw2[:, :15, 0] = 1.0
  flow_hw2[:, 15:32, 0] = 0.5
  for _, col in _picks(flow_hw2):
    assert col < 15
  # Half 1, half 0: mu + sigma > 1, so the last level (a > mu) picks.
  flow_hw2 = np.zeros((S, S, 2), np.float32)
  flow_hw2[:, : S // 2, 0] = 1.0
  cols = [col for _, col in _picks(flow_hw2)]
  assert all(c < S // 2 for c in cols)


@pytest.mark.parametrize("value", [0.0, 2.5])
def test_no_candidate_for_zero_or_constant_flow(value):
  flow_hw2 = np.full((S, S, 2), value, np.float32)
  rng = np.random.default_rng(0)
  assert poke.sample_poke_location(flow_hw2, rng) is None
  assert poke.sample_poke(flow_hw2, rng) is None


def test_sampling_is_deterministic_for_a_seed():
  flow_hw2 = np.random.default_rng(3).normal(size=(S, S, 2))
  a = poke.sample_poke(flow_hw2, np.random.default_rng(7))
  b = poke.sample_poke(flow_hw2, np.random.default_rng(7))
  np.testing.assert_array_equal(a[0], b[0])
  assert a[1] == b[1]


def test_sample_poke_uses_the_flow_vector_at_the_location():
  flow_hw2 = _blob_flow(slice(20, 24), slice(30, 34), (4.0, -3.0))
  flow_hw2[21, 31] = (5.0, -2.0)
  poke_hw2, (row, col, u, v) = poke.sample_poke(
    flow_hw2, np.random.default_rng(0), poke_size=5
  )
  assert (u, v) == tuple(flow_hw2[row, col].tolist())
  assert poke_hw2.shape == (S, S, 2) and poke_hw2.dtype == np.float32
  assert np.all(poke_hw2[row - 2 : row + 3, col - 2 : col + 3] == (u, v))
  assert np.count_nonzero(poke_hw2.any(axis=-1)) == 25


@pytest.mark.parametrize("ps, side", [(1, 1), (3, 3), (4, 5), (5, 5)])
def test_make_poke_map_patch(ps, side):
  poke_hw2 = poke.make_poke_map(16, [(7, 9, 1.5, -2.0)], poke_size=ps)
  nz_rows, nz_cols = np.nonzero(poke_hw2.any(axis=-1))
  half = side // 2
  assert set(nz_rows) == set(range(7 - half, 7 + half + 1))
  assert set(nz_cols) == set(range(9 - half, 9 + half + 1))
  assert len(nz_rows) == side * side
  assert np.all(poke_hw2[nz_rows, nz_cols] == (1.5, -2.0))


def test_make_poke_map_later_pokes_overwrite():
  pokes = [(5, 5, 1.0, 1.0), (6, 6, -2.0, 3.0)]
  poke_hw2 = poke.make_poke_map(12, pokes, poke_size=3)
  np.testing.assert_array_equal(poke_hw2[5, 5], (-2.0, 3.0))
  np.testing.assert_array_equal(poke_hw2[4, 4], (1.0, 1.0))
  np.testing.assert_array_equal(poke_hw2[7, 7], (-2.0, 3.0))
  assert not poke.make_poke_map(12, [], poke_size=3).any()


@pytest.mark.parametrize("row, col", [(0, 5), (5, 11), (-1, 5), (11, 11)])
def test_make_poke_map_rejects_patch_leaving_the_map(row, col):
  with pytest.raises(ValueError, match=r"poke 1 .*leaves the 12x12 map"):
    poke.make_poke_map(12, [(5, 5, 1, 1), (row, col, 1, 1)], poke_size=3)


def test_make_poke_map_rejects_bad_values():
  with pytest.raises(ValueError, match="not integer"):
    poke.make_poke_map(12, [(5.5, 5, 1, 1)])
  with pytest.raises(ValueError, match="non-finite"):
    poke.make_poke_map(12, [(5, 5, np.nan, 1)])


def test_poke_from_image_pixels_square():
  got = poke.poke_from_image_pixels(
    120, 80, 5, -3, image_height=256, image_width=256, size=64, poke_size=3
  )
  assert got == (20, 30, 1.25, -0.75)


def test_poke_from_image_pixels_scales_axes_separately():
  kw = dict(image_height=200, image_width=400, size=64, poke_size=3)
  row, col, u, v = poke.poke_from_image_pixels(100, 50, 10, 10, **kw)
  assert (row, col) == (16, 16)
  assert u == pytest.approx(1.6) and v == pytest.approx(3.2)


def test_poke_from_image_pixels_clamps_to_fit_the_patch():
  kw = dict(image_height=256, image_width=256, size=64, poke_size=5)
  assert poke.poke_from_image_pixels(0, 255.9, 1, 1, **kw)[:2] == (61, 2)
  row, col, u, v = poke.poke_from_image_pixels(0.0, 0.0, 1, 1, **kw)
  poke.make_poke_map(64, [(row, col, u, v)], poke_size=5)  # fits


@pytest.mark.parametrize("x, y", [(-0.5, 10), (256, 10), (10, 256), (10, -1)])
def test_poke_from_image_pixels_rejects_outside(x, y):
  with pytest.raises(ValueError, match="outside the 256x256"):
    poke.poke_from_image_pixels(
      x, y, 1, 1, image_height=256, image_width=256, size=64, poke_size=3
    )


def test_parse_poke():
  assert poke.parse_poke("120,80,5,-3") == (120.0, 80.0, 5.0, -3.0)
  assert poke.parse_poke(" 1.5, 2 ,3e1,-4 ") == (1.5, 2.0, 30.0, -4.0)


@pytest.mark.parametrize(
  "text, match",
  [
    ("1,2,3", "4 comma-separated"),
    ("1,2,3,4,5", "got 5"),
    ("", "got 1"),
    ("1,2,x,4", "DX='x' is not a number"),
    ("1,,3,4", "Y='' is not a number"),
    ("nan,2,3,4", "X='nan' is not finite"),
    ("1,2,3,-inf", "DY='-inf' is not finite"),
  ],
)
def test_parse_poke_errors(text, match):
  with pytest.raises(ValueError, match=match):
    poke.parse_poke(text)


def test_resize_flow_identity_at_size():
  flow_hw2 = np.random.default_rng(0).normal(size=(S, S, 2))
  np.testing.assert_allclose(poke.resize_flow(flow_hw2, S), flow_hw2, 1e-6)


def test_resize_flow_rescales_u_and_v_separately():
  flow_hw2 = np.broadcast_to(np.float32([4.0, 2.0]), (32, 64, 2))
  out_hw2 = poke.resize_flow(flow_hw2, 16)
  assert out_hw2.shape == (16, 16, 2) and out_hw2.dtype == np.float32
  np.testing.assert_allclose(out_hw2, np.broadcast_to([1.0, 1.0], (16, 16, 2)))


def test_resize_flow_is_bilinear_align_corners():
  # u grows linearly along x: corners are kept, the ramp stays linear.
  ramp_w = np.linspace(0.0, 10.0, 9, dtype=np.float32)
  flow_hw2 = np.zeros((9, 9, 2), np.float32)
  flow_hw2[..., 0] = ramp_w
  out_hw2 = poke.resize_flow(flow_hw2, 5)
  np.testing.assert_allclose(
    out_hw2[2, :, 0], np.linspace(0.0, 10.0, 5) * 5 / 9, rtol=1e-6
  )


def test_zero_poke_background_location_with_real_value():
  flow_hw2 = _blob_flow(slice(20, 30), slice(20, 30), (3.0, 1.0), noise=0.0)
  mask_hw = np.zeros((S, S), bool)
  mask_hw[8:42, 8:42] = True
  # Background: below the 5th magnitude percentile (off the blob), or
  # outside the mask (which also excludes a still ring around the blob).
  for kw, fg_hw in (
    ({}, flow_hw2[..., 0] > 0),
    ({"fg_mask_hw": mask_hw}, mask_hw),
  ):
    for seed in range(10):
      poke_hw2, (row, col, u, v) = poke.zero_poke(
        flow_hw2, np.random.default_rng(seed), **kw
      )
      assert (u, v) == (3.0, 1.0)
      assert not fg_hw[row, col]
      assert 3 <= row < S - 3 and 3 <= col < S - 3
      np.testing.assert_array_equal(poke_hw2[row, col], (3.0, 1.0))
  assert poke.zero_poke(np.zeros((S, S, 2)), np.random.default_rng(0)) is None
