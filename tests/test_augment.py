"""Tests for ii2v_jax.data.augment: per-clip colour and geometric changes."""

import math

import numpy as np
import pytest

from ii2v_jax.data import augment

S, T = 64, 11


def _clip(seed=0, t=T, size=S):
  rng = np.random.default_rng(seed)
  video_thwc = rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8)
  flow_hw2 = rng.normal(size=(size, size, 2)).astype(np.float32)
  mask_hw = rng.random((size, size)) < 0.3
  return video_thwc, flow_hw2, mask_hw


def _geom(seed, size=S):
  """The geometric params augment_clip draws for `seed` with p_geom=1."""
  _, geom = augment.draw_augmentation(
    np.random.default_rng(seed), size, p_color=0.0, p_geom=1.0
  )
  return geom


def test_identity_when_both_probabilities_are_zero():
  video, flow, mask = _clip()
  out = augment.augment_clip(
    video, flow, np.random.default_rng(0), p_color=0, p_geom=0, fg_mask_hw=mask
  )
  for got, want in zip(out, (video, flow, mask)):
    np.testing.assert_array_equal(got, want)


def test_shapes_and_dtypes_are_preserved():
  video, flow, mask = _clip()
  for seed in range(3):
    v, f, m = augment.augment_clip(
      video, flow, np.random.default_rng(seed), p_color=1, p_geom=1,
      fg_mask_hw=mask,
    )  # fmt: skip
    assert v.shape == video.shape and v.dtype == np.uint8
    assert f.shape == flow.shape and f.dtype == np.float32
    assert m.shape == mask.shape and m.dtype == bool
  _, _, m = augment.augment_clip(video, flow, np.random.default_rng(0))
  assert m is None


def test_same_transform_on_every_frame():
  video, flow, _ = _clip()
  static = np.repeat(video[:1], T, axis=0)
  for seed in range(4):
    v, _, _ = augment.augment_clip(
      static, flow, np.random.default_rng(seed), p_color=1, p_geom=1
    )
    assert not np.array_equal(v[0], static[0])
    for t in range(1, T):
      np.testing.assert_array_equal(v[t], v[0])


def test_deterministic_for_a_seed():
  video, flow, mask = _clip()
  kw = dict(p_color=1, p_geom=1, fg_mask_hw=mask, rotate_flow_vectors=True)
  a = augment.augment_clip(video, flow, np.random.default_rng(5), **kw)
  b = augment.augment_clip(video, flow, np.random.default_rng(5), **kw)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)


def test_augment_clip_applies_the_drawn_transforms():
  video, flow, mask = _clip()
  color, geom = augment.draw_augmentation(
    np.random.default_rng(9), S, p_color=1, p_geom=1
  )
  want = augment.apply_geometric(
    augment.apply_color(video, color), flow, geom, fg_mask_hw=mask
  )
  got = augment.augment_clip(
    video, flow, np.random.default_rng(9), p_color=1, p_geom=1,
    fg_mask_hw=mask,
  )  # fmt: skip
  for x, y in zip(got, want):
    np.testing.assert_array_equal(x, y)


def test_parameter_ranges():
  draws = [
    augment.draw_augmentation(np.random.default_rng(i), S, p_color=1, p_geom=1)
    for i in range(400)
  ]
  hues = [c.hue for c, _ in draws]
  assert min(hues) >= -0.15 and max(hues) <= 0.30 and max(hues) > 0.2
  shifts = {t for _, g in draws for t in (g.tx, g.ty)}
  assert shifts == {-3, -2, -1, 0, 1, 2}  # randint's exclusive upper bound
  assert all(abs(g.angle_deg) <= 15 for _, g in draws)
  for c, _ in draws:
    assert 0.6 <= c.brightness <= 1.4 and 0.6 <= c.saturation <= 1.4
    assert 0.5 <= c.contrast <= 1.5
  sym = [
    augment.draw_augmentation(
      np.random.default_rng(i), S, p_color=1, symmetric_hue=True
    )[0].hue
    for i in range(200)
  ]
  assert max(abs(h) for h in sym) <= 0.15


def test_translation_moves_marker_and_flow_together():
  for seed in range(6):
    geom = _geom(seed)._replace(angle_deg=0.0)
    video = np.zeros((2, S, S, 3), np.uint8)
    video[:, 30, 20] = 255
    flow = np.zeros((S, S, 2), np.float32)
    flow[30, 20] = (1.0, -1.0)
    v, f, _ = augment.apply_geometric(video, flow, geom)
    row, col = 30 + geom.ty, 20 + geom.tx
    assert np.argwhere(v[1, ..., 0]).tolist() == [[row, col]]
    assert np.argwhere(f[..., 0]).tolist() == [[row, col]]
    np.testing.assert_array_equal(f[row, col], (1.0, -1.0))


@pytest.mark.parametrize("rotate", [False, True])
def test_rotate_flow_vectors_rotates_a_constant_flow(rotate):
  video, _, _ = _clip(t=1)
  flow = np.broadcast_to(np.float32([1.0, 0.0]), (S, S, 2))
  _, f, _ = augment.augment_clip(
    video, flow, np.random.default_rng(3), p_color=0, p_geom=1,
    rotate_flow_vectors=rotate,
  )  # fmt: skip
  angle = math.radians(_geom(3).angle_deg)
  assert abs(angle) > math.radians(1)
  want = (math.cos(angle), math.sin(angle)) if rotate else (1.0, 0.0)
  np.testing.assert_allclose(f, np.broadcast_to(want, f.shape), atol=1e-6)


def _centroid(frame_hw):
  return np.argwhere(frame_hw > 0).mean(axis=0)  # (row, col)


def test_rotated_flow_follows_the_image():
  # A 3x3 marker moves by d between two frames; after the warp, the marker's
  # displacement must match the (rotated) flow vector at its position.
  d = np.array([10.0, 0.0])  # (u, v)
  video = np.zeros((2, S, S, 3), np.uint8)
  video[0, 19:22, 19:22] = 255
  video[1, 19:22, 29:32] = 255
  flow = np.broadcast_to(d.astype(np.float32), (S, S, 2))
  geom = augment.GeomParams(angle_deg=15.0, tx=2, ty=-3)
  for rotate in (False, True):
    v, f, _ = augment.apply_geometric(
      video, flow, geom, rotate_flow_vectors=rotate
    )
    start, end = _centroid(v[0, ..., 0]), _centroid(v[1, ..., 0])
    moved_uv = (end - start)[::-1]
    flow_uv = f[tuple(np.round(start).astype(int))]
    close = np.allclose(moved_uv, flow_uv, atol=1.0)
    assert close == rotate


def _pil_affine_reference(img, geom, mode=None):
  """torchvision 0.7 pipeline: reflect pad, PIL affine NEAREST, crop."""
  from PIL import Image

  h, w = img.shape[:2]
  pad = [(h // 2, h // 2), (w // 2, w // 2)] + [(0, 0)] * (img.ndim - 2)
  padded = np.pad(img, pad, mode="reflect")
  hp, wp = padded.shape[:2]
  cx, cy = wp * 0.5 + 0.5, hp * 0.5 + 0.5
  # Inverse of dst = R (src - c) + c + t with R clockwise in y-down.
  rad = math.radians(geom.angle_deg)
  c, s = math.cos(rad), math.sin(rad)
  x0, y0 = -cx - geom.tx, -cy - geom.ty
  data = (c, s, c * x0 + s * y0 + cx, -s, c, -s * x0 + c * y0 + cy)
  pil = Image.fromarray(padded, mode) if mode else Image.fromarray(padded)
  out = pil.transform((wp, hp), Image.AFFINE, data, resample=Image.NEAREST)
  return np.asarray(out)[h // 2 : h // 2 + h, w // 2 : w // 2 + w]


@pytest.mark.parametrize("size", [64, 128, 63])
def test_geometric_matches_pil_pipeline(size):
  pytest.importorskip("PIL")
  video, flow, _ = _clip(seed=size, t=1, size=size)
  for seed in range(5):
    geom = _geom(seed, size)
    v, f, _ = augment.apply_geometric(video, flow, geom)
    np.testing.assert_array_equal(v[0], _pil_affine_reference(video[0], geom))
    for ch in range(2):
      want = _pil_affine_reference(
        np.ascontiguousarray(flow[..., ch]), geom, "F"
      )
      np.testing.assert_array_equal(f[..., ch], want)


def _pil_color_reference(img, color):
  """torchvision 0.7 functional colour ops on a PIL image."""
  from PIL import Image, ImageEnhance

  pil = ImageEnhance.Brightness(Image.fromarray(img)).enhance(color.brightness)
  pil = ImageEnhance.Contrast(pil).enhance(color.contrast)
  h, s, v = pil.convert("HSV").split()
  with np.errstate(over="ignore"):
    h_hw = np.asarray(h, np.uint8) + np.uint8(int(color.hue * 255) % 256)
  pil = Image.merge("HSV", (Image.fromarray(h_hw, "L"), s, v)).convert("RGB")
  return np.asarray(ImageEnhance.Color(pil).enhance(color.saturation))


def test_color_matches_pillow():
  pytest.importorskip("PIL")
  video, _, _ = _clip(t=4)
  for seed in range(6):
    color, _ = augment.draw_augmentation(
      np.random.default_rng(seed), S, p_color=1, p_geom=0
    )
    got = augment.apply_color(video, color)
    for t in range(len(video)):
      np.testing.assert_array_equal(
        got[t], _pil_color_reference(video[t], color)
      )


@pytest.mark.parametrize("hue", [-0.15, -0.01, 0.02, 0.30, 0.5])
def test_hue_round_trip_matches_pillow_on_many_colours(hue):
  pytest.importorskip("PIL")
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
  img[0] = np.arange(256)[:, None]  # grays
  color = augment.ColorParams(1.0, 1.0, hue, 1.0)
  np.testing.assert_array_equal(
    augment.apply_color(img, color), _pil_color_reference(img, color)
  )
