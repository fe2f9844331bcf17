"""The web app in a real browser: Debian's chromium driven by Playwright.

The server runs as `python -m ii2v_jax.serve` in a subprocess on a free
loopback port. Without chromium this test fails and says how to install
it (`make test` installs it when it runs as root).
"""

import io
import re

import numpy as np
import pytest
from PIL import Image

from ii2v_jax.io import video_io
from tools import serve_browser


def png_file(name, array) -> dict:
  buf = io.BytesIO()
  Image.fromarray(array).save(buf, "PNG")
  return {"name": name, "mimeType": "image/png", "buffer": buf.getvalue()}


def near_far(a, b, center, near, far):
  diff = np.abs(a.astype(int) - b.astype(int)).mean(-1)
  yy, xx = np.mgrid[: diff.shape[0], : diff.shape[1]]
  dist = np.hypot(yy - center[0], xx - center[1])
  return diff[dist < near].mean(), diff[dist > far].mean()


def poke_moves_the_part_near_the_poke(page, poke, cell) -> int:
  """Drags; the video plays in place; returns its frame count."""
  serve_browser.drag(page, poke[:2], poke[2:])
  serve_browser.wait_for_video(page)
  assert re.search(r"1 poke: server \d+ ms", page.text_content("#status"))
  count = page.evaluate("() => state.video.count")
  first = serve_browser.stage_at_frame(page, 0)
  last = serve_browser.stage_at_frame(page, count - 1)
  side = first.shape[1]  # The default image is square: stage = image.
  center = ((cell[0] + 0.5) * side / 64, (cell[1] + 0.5) * side / 64)
  near, far = near_far(last, first, center, side * 6 / 64, side * 24 / 64)
  assert near > 2.0 and far < 1.5, (near, far)
  serve_browser.resume(page)
  return count


def continue_from_here(page) -> None:
  before = page.get_attribute("#stage", "data-image")
  page.click("#continue")
  page.wait_for_function(
    "(id) => document.getElementById('stage').dataset.image !== id",
    arg=before,
  )
  assert page.get_attribute("#video", "data-frame") == ""


def heat_map_at(page, fx, fy) -> None:
  page.click("#heatmap")
  box = page.locator("#photo").bounding_box()
  page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
  page.wait_for_selector("#heat[data-ready='1']", timeout=60_000)
  assert "heat map of 4 pokes" in page.text_content("#status")


def export_mp4(page, poke, path) -> np.ndarray:
  serve_browser.drag(page, poke[:2], poke[2:])
  serve_browser.wait_for_video(page)
  with page.expect_download() as download:
    page.click("#mp4")
  download.value.save_as(path)
  return video_io.read_video(path)


def mistakes_are_said_in_words(page) -> None:
  """A bad upload; an off-crop poke on a wide photo, its arrow taken back
  until the pad fit brings that spot into the model's square."""
  notes = b"these are notes, not an image"
  page.set_input_files(
    "#file",
    files=[{"name": "notes.png", "mimeType": "image/png", "buffer": notes}],
  )
  page.wait_for_function(
    "() => document.getElementById('error').textContent"
    ".includes('cannot read image')"
  )
  wide = np.zeros((60, 120, 3), np.uint8)
  wide[:, 30:90] = 160
  page.set_input_files("#file", files=[png_file("wide.png", wide)])
  page.wait_for_function(
    "() => /120x60 image ready/.test("
    "document.getElementById('status').textContent)"
  )
  assert page.is_visible("#box-label")  # The centre crop is framed.
  serve_browser.drag(page, (0.1, 0.5), (0.05, 0))
  page.wait_for_function(
    "() => document.getElementById('error').textContent.includes('centre crop')"
  )
  page.wait_for_function(
    "() => document.querySelectorAll('#arrows line').length === 0"
  )
  # Choosing another fit fits the same photo again: now the whole of it.
  page.select_option("#fit", "pad")
  page.wait_for_function("() => state.image.fit === 'pad'")
  serve_browser.drag(page, (0.1, 0.5), (0.05, 0))
  serve_browser.wait_for_video(page)


def test_poke_continue_heat_map_export_and_errors(tiny_warp_workdir, tmp_path):
  try:
    serve_browser.chromium_path()
  except RuntimeError as e:
    pytest.fail(str(e))
  poke, cell = serve_browser.clip_poke(tiny_warp_workdir)
  extra = ["--batch_sizes", "1,4"]
  with serve_browser.running_server(tiny_warp_workdir, extra=extra) as (
    url,
    proc,
    _,
  ):
    assert url.startswith("http://127.0.0.1:")
    with serve_browser.browser_page() as page:
      page_errors = []
      page.on("pageerror", lambda e: page_errors.append(str(e)))
      serve_browser.open_app(page, url)
      count = poke_moves_the_part_near_the_poke(page, poke, cell)
      continue_from_here(page)
      heat_map_at(page, *poke[:2])
      video = export_mp4(page, poke, tmp_path / "poke.mp4")
      assert video.shape == (count, 64, 64, 3)  # The continued 64 px frame.
      mistakes_are_said_in_words(page)
      assert page_errors == []
    assert proc.poll() is None  # Still serving after all of it.
