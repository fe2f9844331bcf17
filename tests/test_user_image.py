"""The one image-to-model mapping of the sampling CLI and the web app."""

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from datasets.video_common import frames
from ii2v_jax.data import user_image


def encode(array, fmt, **kw) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(array).save(buf, fmt, **kw)
  return buf.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
  """A PNG whose header claims a size its (empty) data does not hold."""

  def chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return struct.pack(">I", len(data)) + kind + data + crc

  ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
  return (
    b"\x89PNG\r\n\x1a\n"
    + chunk(b"IHDR", ihdr)
    + chunk(b"IDAT", zlib.compress(b""))
    + chunk(b"IEND", b"")
  )


def gradient(h=30, w=40) -> np.ndarray:
  y, x = np.mgrid[:h, :w]
  return np.stack([x * 6, y * 8, (x + y) * 3], -1).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_decodes_formats(fmt):
  image = gradient()
  kw = {"lossless": True} if fmt == "WEBP" else {"quality": 95}
  out = user_image.decode_image(encode(image, fmt, **kw))
  assert out.shape == (30, 40, 3) and out.dtype == np.uint8
  assert np.abs(out.astype(int) - image).max() <= (0 if fmt != "JPEG" else 12)


def test_exif_orientation_is_applied():
  image = gradient(20, 40)
  exif = Image.Exif()
  exif[0x0112] = 6  # Rotate 90 degrees clockwise to display.
  out = user_image.decode_image(encode(image, "JPEG", exif=exif, quality=95))
  assert out.shape == (40, 20, 3)
  turned = np.rot90(image, k=-1)
  assert np.abs(out.astype(int) - turned).mean() < 4


def test_converts_gray_alpha_palette_and_16_bit():
  gray = np.arange(0, 240, 2, np.uint8).reshape(10, 12)
  out = user_image.decode_image(encode(gray, "PNG"))
  assert out.shape == (10, 12, 3) and (out == gray[..., None]).all()
  rgba = np.zeros((4, 4, 4), np.uint8)
  rgba[..., 0], rgba[:2, :, 3] = 200, 255  # Lower half transparent.
  out = user_image.decode_image(encode(rgba, "PNG"))
  assert (out[0, 0] == [200, 0, 0]).all() and (out[3, 3] == 255).all()
  pal = Image.fromarray(gradient()).convert("P", palette=Image.ADAPTIVE)
  buf = io.BytesIO()
  pal.save(buf, "PNG")
  assert user_image.decode_image(buf.getvalue()).shape == (30, 40, 3)
  deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
  ok, png16 = cv2.imencode(".png", deep)
  out = user_image.decode_image(png16.tobytes())
  expected = np.rint(deep / 257.0).astype(np.uint8)
  assert np.abs(out[..., 0].astype(int) - expected).max() <= 1
  dark = np.full((4, 4), 200, np.uint16)  # A dark 16-bit image stays dark.
  out = user_image.decode_image(cv2.imencode(".png", dark)[1].tobytes())
  assert (out == 1).all()


@pytest.mark.parametrize(
  "data, caps, message, too_large",
  [
    (b"", {}, "empty", False),
    (b"hello, not an image", {}, "not a JPEG, PNG or WebP", False),
    (encode(gradient(), "PNG")[:60], {}, "truncated or damaged", False),
    (encode(gradient(), "PNG"), {"max_bytes": 100}, "limit is", True),
    (encode(gradient(), "PNG"), {"max_pixels": 1000}, "megapixels", True),
    (png_header_claiming(100_000, 100_000), {}, "megapixels", True),
    (png_header_claiming(9000, 9000), {}, "megapixels", True),
    (encode(gradient(), "GIF"), {}, "not a JPEG, PNG or WebP", False),
  ],
)
def test_bad_images_say_why(data, caps, message, too_large):
  with pytest.raises(user_image.ImageError, match=message) as e:
    user_image.decode_image(data, **caps)
  assert e.value.too_large == too_large


def test_read_image_names_the_file(tmp_path):
  with pytest.raises(user_image.ImageError, match="not found"):
    user_image.read_image(tmp_path / "missing.png")
  (tmp_path / "bad.png").write_text("text")
  with pytest.raises(user_image.ImageError, match="bad.png"):
    user_image.read_image(tmp_path / "bad.png")


@pytest.mark.parametrize("shape", [(90, 160), (160, 90), (64, 64), (7, 3)])
def test_crop_is_the_dataset_builders_rule(shape):
  image = np.random.default_rng(0).integers(0, 255, (*shape, 3), np.uint8)
  fit = user_image.fit_image(image, 64, 3, "crop")
  np.testing.assert_array_equal(
    user_image.model_input(image, fit), frames.to_square(image, 64)
  )


def test_pad_keeps_the_whole_image_and_repeats_its_edges():
  image = np.zeros((20, 40, 3), np.uint8)
  image[:, :, 0] = np.arange(40) * 6
  image[0, :, 1], image[-1, :, 1] = 100, 200
  fit = user_image.fit_image(image, 40, 3, "pad")
  assert (fit.left, fit.top, fit.width, fit.height) == (0, -10, 40, 40)
  np.testing.assert_allclose(fit.box_fractions(), (0, -0.5, 1, 2))
  square = user_image.model_input(image, fit)
  assert (square[:10, :, 1] == 100).all() and (square[30:, :, 1] == 200).all()
  np.testing.assert_array_equal(square[10:30], image)
  # A poke at the image's centre lands at the square's centre.
  assert fit.poke_to_model(20, 10, 2, 2)[:2] == (20, 20)


def test_pokes_map_through_the_crop():
  fit = user_image.fit_image(np.zeros((100, 300, 3), np.uint8), 50, 3)
  assert (fit.left, fit.top, fit.width) == (100, 0, 100)
  np.testing.assert_allclose(fit.box_fractions(), (1 / 3, 0, 1 / 3, 1))
  assert fit.poke_to_model(150, 50, 10, -4) == (25, 25, 5.0, -2.0)
  # Fractions of the image are the same poke.
  px = fit.fractions_to_pixels(0.5, 0.5, 10 / 300, -4 / 100)
  np.testing.assert_allclose(px, (150, 50, 10, -4))
  # Near the crop's edge the location is clamped so its patch fits.
  assert fit.poke_to_model(100, 0, 1, 1)[:2] == (1, 1)
  for bad, words in [
    ((99, 50, 1, 1), "centre crop"),
    ((300, 50, 1, 1), "outside the 300x100"),
    ((150, -1, 1, 1), "outside the 300x100"),
    ((150, 50, float("nan"), 1), "non-finite"),
    ((150, 50, 1, float("inf")), "non-finite"),
  ]:
    with pytest.raises(ValueError, match=words):
      fit.poke_to_model(*bad)


def test_display_frames_are_even_and_bounded():
  cases = {
    (100, 300, "crop"): (100, 100),
    (451, 300, "crop"): (300, 300),
    (451, 301, "squash"): (450, 300),  # Even sides for H.264.
    (3000, 6000, "pad"): (512, 512),
    (1, 1, "crop"): (64, 64),  # Small images come up to the model size.
  }
  for (h, w, mode), size in cases.items():
    fit = user_image.fit_image(np.zeros((h, w, 3), np.uint8), 64, 3, mode)
    assert fit.display_size() == size, (h, w, mode)
    first = user_image.display_frame(np.zeros((h, w, 3), np.uint8), fit)
    assert first.shape == (*size, 3)
  fit = user_image.fit_image(np.zeros((100, 300, 3), np.uint8), 64, 3)
  np.testing.assert_allclose(fit.to_display(150, 50, 10, 2), (50, 50, 10, 2))


def test_dataset_images_are_256_px_test_frames(tiny_config):
  images = user_image.dataset_images(tiny_config.data, 3)
  assert len(images) == 3 and images[0].shape == (256, 256, 3)
  assert not np.array_equal(images[0], images[1])
