"""The web app's API: pokes, heat map, continue, export, bad input, fuzz."""

import base64
import io
import json
import logging
import socket
import subprocess
import sys
import types

import cv2
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from ii2v_jax import sample
from ii2v_jax.io import video_io
from ii2v_jax.serve import __main__ as serve_main
from ii2v_jax.serve import app as app_lib
from ii2v_jax.serve import batcher as batcher_lib

MAX_BYTES = 2**20  # A small upload cap keeps oversized cases cheap.


def make_server(workdir, data_dir=None, **caps):
  args = serve_main.parse_args(
    ["--workdir", workdir, "--batch_sizes", "1,4"]
    + (["--data_dir", data_dir] if data_dir else [])
  )
  server, _ = serve_main.build_server(args)
  server.caps.update(caps)
  return server


@pytest.fixture(scope="module")
def served(tiny_warp_workdir):
  server = make_server(tiny_warp_workdir, max_bytes=MAX_BYTES)
  with TestClient(app_lib.create_app(server)) as client:
    yield types.SimpleNamespace(server=server, client=client)
  server.batcher.stop()


def png(array) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(array).save(buf, "PNG")
  return buf.getvalue()


NOISE_PNG = png(
  np.random.default_rng(0).integers(0, 255, (50, 50, 3), np.uint8)
)


def decode_data_url(url: str) -> np.ndarray:
  head, data = url.split(",", 1)
  assert head == "data:image/png;base64"
  return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def frames_of(answer) -> np.ndarray:
  sprite = decode_data_url(answer["frames"])
  s = answer["frame_size"]
  return sprite.reshape(answer["frame_count"], s, s, 3)


def object_poke(server):
  """A poke on the moving part of the default image (test clip 0), from
  the clip's own flow, as fractions: (fx, fy, fdx, fdy), (row, col)."""
  from ii2v_jax.data import pipeline, poke

  cfg = server.engine.config.data
  clip = pipeline.open_split(cfg.data_dir, cfg.name, cfg.test_split)[0]
  flow = np.asarray(clip["flow"], np.float32)
  _, (row, col, u, v) = poke.sample_poke(flow, np.random.default_rng(0))
  s = flow.shape[0]
  return ((col + 0.5) / s, (row + 0.5) / s, 2 * u / s, 2 * v / s), (row, col)


def near_far(a, b, row, col, near=6, far=24):
  """Mean |a - b| within `near` px of (row, col) and beyond `far` px."""
  diff = np.abs(a.astype(int) - b.astype(int)).mean(-1)
  yy, xx = np.mgrid[: diff.shape[0], : diff.shape[1]]
  dist = np.hypot(yy - row, xx - col)
  return diff[dist < near].mean(), diff[dist > far].mean()


def test_page_info_and_gallery(served):
  page = served.client.get("/")
  assert page.status_code == 200 and "/static/app.js" in page.text
  for asset in ("app.js", "style.css"):
    assert served.client.get(f"/static/{asset}").status_code == 200
  info = served.client.get("/api/info").json()
  assert info["model"]["resolution"] == 64 and info["batch_sizes"] == [1, 4]
  assert len(info["gallery"]) == 8  # Every test clip of the tiny set.
  default = info["default_image"]
  assert default["id"] == info["gallery"][0]["id"]
  view = served.client.get(default["url"])
  assert view.headers["content-type"] == "image/jpeg"
  # The default image is the CLI's: test clip 0's first frame at 256 px.
  cli_default = sample.default_image(served.server.engine.config)
  shown = np.asarray(Image.open(io.BytesIO(view.content)))
  assert np.abs(shown.astype(int) - cli_default).mean() < 3


def test_poke_moves_the_poked_part_only(served):
  (fx, fy, fdx, fdy), (row, col) = object_poke(served.server)
  info = served.client.get("/api/info").json()
  answer = served.client.post(
    "/api/poke",
    json={"image": info["default_image"]["id"], "pokes": [[fx, fy, fdx, fdy]]},
  ).json()
  frames = frames_of(answer)
  assert frames.shape == (11, 64, 64, 3)
  entry = served.server.images.get(info["default_image"]["id"])
  np.testing.assert_array_equal(frames[0], entry.x0)
  near, far = near_far(frames[-1], frames[0], row, col)
  assert near > 2.0 and far < 1.0, (near, far)
  t = answer["timing"]
  assert t["batch"] == 1 and t["server_ms"] >= t["compute_ms"] > 0
  assert set(t) >= {"queue_ms", "compute_ms", "encode_ms", "server_ms"}


def test_cli_and_server_give_the_same_video(
  served, tiny_warp_workdir, tmp_path
):
  rng = np.random.default_rng(3)
  image = rng.integers(0, 255, (120, 160, 3), np.uint8)
  image = cv2.GaussianBlur(image, (0, 0), 3)
  (tmp_path / "in.png").write_bytes(png(image))
  pokes_px = [(100, 60, 20, -15), (50, 90, -8, 4)]
  argv = ["--workdir", tiny_warp_workdir, "--image", str(tmp_path / "in.png")]
  for p in pokes_px:
    argv += ["--poke", ",".join(str(v) for v in p)]
  assert sample.main(argv + ["--out", str(tmp_path / "cli.mp4")]) == 0
  up = served.client.post("/api/upload", content=png(image)).json()
  assert up["box"] == [0.125, 0.0, 0.75, 1.0]  # The centred 120 px square.
  fractions = [
    [x / 160, y / 120, dx / 160, dy / 120] for x, y, dx, dy in pokes_px
  ]
  answer = served.client.post(
    "/api/poke", json={"image": up["id"], "pokes": fractions}
  ).json()
  for fmt in ("gif", "mp4"):
    got = served.client.get(f"/api/export/{answer['video']}.{fmt}")
    assert got.status_code == 200
    (tmp_path / f"server.{fmt}").write_bytes(got.content)
    server = video_io.read_video(tmp_path / f"server.{fmt}")
    cli = video_io.read_video(tmp_path / f"cli.{fmt}")
    assert server.shape == cli.shape == (11, 120, 120, 3)
    np.testing.assert_array_equal(server, cli)


def test_heat_map_is_strongest_around_the_pixel(served):
  (fx, fy, _, _), (row, col) = object_poke(served.server)
  image_id = served.client.get("/api/info").json()["default_image"]["id"]
  answer = served.client.post(
    "/api/heatmap", json={"image": image_id, "point": [fx, fy]}
  ).json()
  assert answer["pokes"] == 4 and answer["cell"] == [row, col]
  assert answer["timing"]["batch"] == 4
  overlay = decode_data_url(answer["heatmap"])
  assert overlay.shape == (64, 64, 4)
  alpha = overlay[..., 3].astype(float)
  near, far = near_far(
    alpha[..., None], np.zeros_like(alpha)[..., None], row, col
  )
  assert answer["max_motion_px"] > 0.5 and near > far + 20, (near, far)


def test_continue_uses_the_last_frame(served):
  info = served.client.get("/api/info").json()
  answer = served.client.post(
    "/api/poke",
    json={"image": info["default_image"]["id"], "pokes": [[0.4, 0.5, 0.1, 0]]},
  ).json()
  nxt = served.client.post("/api/continue", json={"video": answer["video"]})
  entry = served.server.images.get(nxt.json()["id"])
  np.testing.assert_array_equal(entry.x0, frames_of(answer)[-1])
  again = served.client.post(
    "/api/poke", json={"image": entry.id, "pokes": [[0.4, 0.5, 0.1, 0]]}
  )
  assert again.status_code == 200


def test_queue_batches_waiting_requests(served):
  eng = served.server.engine
  rng = np.random.default_rng(0)
  x0 = rng.integers(0, 255, (6, 64, 64, 3), np.uint8)
  pk = np.zeros((6, 64, 64, 2), np.float32)
  pk[:, 30:33, 30:33] = rng.normal(0, 3, (6, 1, 1, 2))
  queue = batcher_lib.Batcher(eng)
  futures = [queue.submit(x0[i : i + 1], pk[i : i + 1]) for i in range(6)]
  queue.start()  # All six wait already: a batch of 4, then 2 padded to 4.
  results = [f.result(timeout=120) for f in futures]
  queue.stop()
  assert [r.batch for r in results] == [4] * 6
  assert [r.rows for r in results] == [4, 4, 4, 4, 2, 2]
  alone = eng.run(x0[5:6], pk[5:6])
  np.testing.assert_array_equal(results[5].video_nthw3, alone)
  with pytest.raises(ValueError, match="1..4 rows"):
    queue.submit(x0[:0], pk[:0])


@pytest.mark.parametrize(
  "data, status, words",
  [
    (b"", 400, "empty"),
    (b"GIF89a not really", 400, "not a JPEG, PNG or WebP"),
    (NOISE_PNG[: len(NOISE_PNG) // 2], 400, "truncated"),
    (b"\x89PNG" + bytes(MAX_BYTES), 413, "too large"),
  ],
)
def test_bad_uploads_are_refused_in_words(served, data, status, words):
  got = served.client.post("/api/upload", content=data)
  assert got.status_code == status and words in got.json()["error"]


def test_uploads_of_any_shape_and_fit(served):
  rgba = np.zeros((31, 7, 4), np.uint8)
  for fit in ("crop", "pad", "squash"):
    got = served.client.post(f"/api/upload?fit={fit}", content=png(rgba))
    assert got.status_code == 200 and got.json()["fit"] == fit
  assert got.json()["box"] == [0, 0, 1, 1]
  bad = served.client.post("/api/upload?fit=stretch", content=png(rgba))
  assert bad.status_code == 400 and "fit must be" in bad.json()["error"]


def test_no_dataset_means_no_gallery(tiny_warp_workdir, tmp_path):
  server = make_server(tiny_warp_workdir, data_dir=str(tmp_path))
  try:
    with TestClient(app_lib.create_app(server)) as client:
      info = client.get("/api/info").json()
      assert info["gallery"] == [] and info["default_image"] is None
      up = client.post(
        "/api/upload", content=png(np.zeros((9, 9, 3), np.uint8))
      )
      poke = client.post(
        "/api/poke",
        json={"image": up.json()["id"], "pokes": [[0.5, 0.5, 0.2, 0]]},
      )
      assert poke.status_code == 200
  finally:
    server.batcher.stop()


def pick(rng, options):
  return options[int(rng.integers(len(options)))]


def evil_value(rng):
  return pick(
    rng,
    [
      None,
      True,
      False,
      "",
      "0.5",
      "x" * 300,
      [],
      {},
      [[]],
      -1,
      0,
      1,
      2**64,
      10**400,
      1e308,
      -1e308,
      1.0,
      0.999999,
      1e-320,
      -0.0,
      [0.5] * 4,
      {"x": 1},
      "../../etc/passwd",
      "\u202e\ud7ff",
      [[0.5, 0.5, 0.1, 0.1]],
    ],  # fmt: skip
  )


def poke_case(rng, image_id):
  """A wrong (or now and then right) poke request."""
  kind = rng.integers(4)
  valid = {"image": image_id, "pokes": [[0.5, 0.5, 0.1, 0.0]]}
  if kind == 0:  # A valid body with one value replaced.
    body = dict(valid)
    body[pick(rng, ["image", "pokes", "extra"])] = evil_value(rng)
    return "POST", "/api/poke", {"json": body}
  if kind == 1:  # Pokes: random lengths, numbers and shapes.
    n = int(rng.integers(0, 9))
    scale = pick(rng, [0.2, 2, 1e6])
    pokes = [[float(v) for v in rng.normal(0.5, scale, 4)] for _ in range(n)]
    if n and rng.random() < 0.5:
      pokes[0] = pokes[0][: int(rng.integers(0, 6))]
    return "POST", "/api/poke", {"json": {"image": image_id, "pokes": pokes}}
  if kind == 2:  # Truncated or garbled JSON text.
    text = json.dumps(valid).encode()
    cut = int(rng.integers(0, len(text)))
    junk = bytes(rng.integers(0, 256, int(rng.integers(0, 40)), np.uint8))
    return "POST", "/api/poke", {"content": text[:cut] + junk}
  literal = pick(rng, ["NaN", "Infinity", "-Infinity", "1e999", "9" * 5000])
  body = f'{{"image": "{image_id}", "pokes": [[0.5, 0.5, {literal}, 0]]}}'
  return "POST", "/api/poke", {"content": body.encode()}


def upload_case(rng):
  """Truncated, empty or oversized uploads; sometimes a bad fit."""
  if rng.random() < 0.5:
    size = int(pick(rng, [MAX_BYTES + 1, 10, 0]))
    return "POST", "/api/upload", {"content": bytes(size)}
  data = png(rng.integers(0, 255, (20, 30, 3), np.uint8))
  data = data[: int(rng.integers(0, len(data)))]
  fit = pick(rng, ["crop", "pad", "squash", "x", "%00"])
  return "POST", f"/api/upload?fit={fit}", {"content": data}


def other_case(rng, image_id, video_id):
  """Other endpoints: bad bodies, foreign ids, paths, methods, formats."""
  kind = rng.integers(6)
  if kind == 0:  # Deep nesting, oversized bodies, other endpoints' bodies.
    body = pick(rng, [b"[" * 50000, b" " * 70000, b"{}" * 10, b"null"])
    path = pick(rng, ["/api/poke", "/api/heatmap", "/api/continue"])
    return "POST", path, {"content": body}
  if kind == 1:
    point = pick(rng, [evil_value(rng), list(rng.normal(0.5, 1, 2))])
    body = {"image": pick(rng, [image_id, evil_value(rng)]), "point": point}
    return "POST", "/api/heatmap", {"json": body}
  if kind == 2:
    return "POST", "/api/continue", {"json": {"video": evil_value(rng)}}
  if kind == 3:  # Ids and names that are not ours, paths included.
    key = pick(rng, ["nope", "..%2F..%2Fetc%2Fpasswd", "%00", "a" * 200])
    path = pick(rng, [f"/api/image/{key}", f"/api/export/{key}.mp4"])
    return "GET", path, {}
  if kind == 4:
    fmt = pick(rng, ["avi", "exe", "mp4.exe", ""])
    return "GET", f"/api/export/{video_id}.{fmt}", {}
  method = pick(rng, ["GET", "PUT", "DELETE", "POST"])
  path = pick(rng, ["/api/poke", "/api/info", "/nothing", "/static/../app.py"])
  return method, path, {}


def fuzz_case(rng, image_id, video_id):
  """(method, path, kwargs) for one random, mostly wrong, request."""
  kind = rng.random()
  if kind < 0.4:
    return poke_case(rng, image_id)
  if kind < 0.55:
    return upload_case(rng)
  return other_case(rng, image_id, video_id)


def test_fuzz_never_breaks_the_server(served, caplog):
  client = served.client
  info = client.get("/api/info").json()
  image_id = info["default_image"]["id"]
  video_id = client.post(
    "/api/poke", json={"image": image_id, "pokes": [[0.5, 0.5, 0.1, 0]]}
  ).json()["video"]
  rng = np.random.default_rng(2024)
  statuses = {}
  caplog.set_level(logging.ERROR)
  for i in range(600):
    method, path, kwargs = fuzz_case(rng, image_id, video_id)
    got = client.request(method, path, **kwargs)
    statuses[got.status_code] = statuses.get(got.status_code, 0) + 1
    assert got.status_code < 500, (i, method, path, got.text[:200])
    assert "Traceback" not in got.text
    if got.status_code >= 400:
      error = got.json()["error"]
      assert isinstance(error, str) and error, (i, path)
  assert not caplog.records, [r.getMessage() for r in caplog.records]
  assert sum(v for k, v in statuses.items() if k >= 400) > 400, statuses
  assert client.get("/api/health").json()["ok"]
  ok = client.post(
    "/api/poke", json={"image": image_id, "pokes": [[0.5, 0.5, 0.1, 0]]}
  )
  assert ok.status_code == 200


def test_main_warns_off_loopback_and_needs_a_checkpoint(tmp_path):
  proc = subprocess.run(
    [sys.executable, "-m", "ii2v_jax.serve", "--workdir", str(tmp_path)]
    + ["--host", "0.0.0.0"],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert "warning: serving on 0.0.0.0" in proc.stderr
  assert "no checkpoint" in proc.stderr and "make demo" in proc.stderr
  assert serve_main.is_loopback("127.0.0.1") and serve_main.is_loopback("::1")
  (tmp_path / "checkpoints").mkdir()
  (tmp_path / "config.json").write_text('{"data": 1}')
  proc = subprocess.run(
    [sys.executable, "-m", "ii2v_jax.serve", "--workdir", str(tmp_path)],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert "config.json lacks" in proc.stderr
  assert not serve_main.is_loopback("0.0.0.0")


def test_main_says_when_the_port_is_taken(tiny_warp_workdir):
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    with pytest.raises(SystemExit, match="cannot listen on 127.0.0.1"):
      serve_main.main(["--workdir", tiny_warp_workdir, "--port", str(port)])
