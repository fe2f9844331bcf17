"""Drives the web app in Debian's chromium through Playwright.

  python tools/serve_browser.py --workdir runs/synthetic
      [--data_dir data] [--screenshot docs/images/serve.png]

Starts `python -m ii2v_jax.serve` on a free loopback port, opens the page,
pokes the default image where its test clip moves, and saves a screenshot
of the page playing the video. The real-browser test
(tests/test_serve_browser.py) uses the same functions. Playwright's own
browser download cannot work offline: the system chromium is used
(apt-get install chromium).
"""

import argparse
import contextlib
import io
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
URL_LINE = re.compile(r"serving on (http://\S+/)")


def chromium_path() -> str:
  for name in ("chromium", "chromium-browser"):
    found = shutil.which(name)
    if found:
      return found
  raise RuntimeError(
    "chromium not found: install Debian's chromium (apt-get install "
    "chromium; `make test` does this when it runs as root)"
  )


@contextlib.contextmanager
def running_server(workdir, *, extra=(), timeout_s=600, cwd=ROOT):
  """Starts the server on a free port; yields (url, process)."""
  cmd = [sys.executable, "-m", "ii2v_jax.serve", "--workdir", str(workdir)]
  proc = subprocess.Popen(
    cmd + ["--port", "0", *extra],
    cwd=cwd,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )
  lines, found = [], []

  def read():  # Keeps draining the pipe so the server never blocks on it.
    for line in proc.stdout:
      lines.append(line)
      if m := URL_LINE.search(line):
        found.append(m.group(1))

  threading.Thread(target=read, daemon=True).start()
  try:
    deadline = time.monotonic() + timeout_s
    while not found:
      if proc.poll() is not None or time.monotonic() > deadline:
        raise RuntimeError("server did not start:\n" + "".join(lines))
      time.sleep(0.1)
    yield found[0], proc, lines
  finally:
    proc.terminate()
    try:
      proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()


@contextlib.contextmanager
def browser_page(width=1280, height=860):
  from playwright.sync_api import sync_playwright

  with sync_playwright() as p:
    browser = p.chromium.launch(
      executable_path=chromium_path(),
      # Root in a container: chromium's sandbox needs user namespaces.
      args=["--no-sandbox", "--disable-gpu"],
    )
    try:
      page = browser.new_page(
        viewport={"width": width, "height": height}, accept_downloads=True
      )
      yield page
    finally:
      browser.close()


def open_app(page, url: str, timeout_ms=60_000) -> None:
  page.goto(url)
  page.wait_for_selector("body[data-ready='1']", timeout=timeout_ms)


def drag(page, start, shove, steps=8) -> None:
  """Press at `start`, drag by `shove` (both fractions of the image)."""
  r = page.locator("#photo").bounding_box()
  x0, y0 = r["x"] + start[0] * r["width"], r["y"] + start[1] * r["height"]
  x1, y1 = x0 + shove[0] * r["width"], y0 + shove[1] * r["height"]
  page.mouse.move(x0, y0)
  page.mouse.down()
  page.mouse.move(x1, y1, steps=steps)
  page.mouse.up()


def wait_for_video(page, timeout_ms=60_000) -> None:
  """Waits until a video plays and the status shows its server time."""
  page.wait_for_function(
    "() => document.getElementById('video').dataset.frame !== '' && "
    "/server \\d+ ms/.test(document.getElementById('status').textContent)",
    timeout=timeout_ms,
  )


def stage_at_frame(page, index: int) -> np.ndarray:
  """The stage with the video paused at frame `index`, arrows hidden."""
  page.evaluate(
    "(i) => { clearInterval(state.timer); state.timer = null; drawFrame(i);"
    " document.getElementById('arrows').style.visibility = 'hidden'; }",
    index,
  )
  png = page.locator("#stage").screenshot()
  page.evaluate(
    "() => { document.getElementById('arrows').style.visibility = ''; }"
  )
  return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def resume(page) -> None:
  """Restarts the paused loop at the page's own speed."""
  page.evaluate(
    "() => { let i = 0; state.timer = setInterval(() => {"
    " i = (i + 1) % state.video.count; drawFrame(i); }, 125); }"
  )


def clip_poke(workdir, data_dir=None, scale=2.0, seed=0):
  """A poke where test clip 0 (the page's default image) moves, from its
  stored flow: ((fx, fy, fdx, fdy) fractions of the image, (row, col))."""
  from ii2v_jax.data import pipeline, poke
  from ii2v_jax.io import checkpoint

  cfg = checkpoint.read_config(workdir).data
  root = data_dir or cfg.data_dir
  clip = pipeline.open_split(root, cfg.name, cfg.test_split)[0]
  flow = np.asarray(clip["flow"], np.float32)
  _, (row, col, u, v) = poke.sample_poke(flow, np.random.default_rng(seed))
  s = flow.shape[0]
  fractions = ((col + 0.5) / s, (row + 0.5) / s, scale * u / s, scale * v / s)
  return fractions, (row, col)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", default="runs/synthetic")
  p.add_argument("--data_dir", default=None)
  p.add_argument("--screenshot", default="docs/images/serve.png")
  p.add_argument(
    "--poke",
    default=None,
    help="fx,fy,fdx,fdy as fractions of the image (default: where test "
    "clip 0 moves, twice its motion)",
  )
  args = p.parse_args(argv)
  if args.poke:
    fx, fy, fdx, fdy = (float(v) for v in args.poke.split(","))
  else:
    (fx, fy, fdx, fdy), _ = clip_poke(args.workdir, args.data_dir)
  extra = ["--data_dir", args.data_dir] if args.data_dir else []
  with running_server(args.workdir, extra=extra) as (url, _, _):
    with browser_page(width=1180, height=740) as page:
      open_app(page, url)
      drag(page, (fx, fy), (fdx, fdy))
      wait_for_video(page)
      stage_at_frame(page, page.evaluate("() => state.video.count - 1"))
      out = pathlib.Path(args.screenshot)
      out.parent.mkdir(parents=True, exist_ok=True)
      page.screenshot(path=str(out))
      print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
