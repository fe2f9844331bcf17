"""The Starlette application: the page and its JSON API.

  GET  /                        the page (static/index.html)
  GET  /api/info                model, limits, default image, gallery
  GET  /api/image/{id}          an image as the page shows it (JPEG)
  POST /api/upload[?fit=crop]   image bytes -> image description
  POST /api/poke                {"image", "pokes": [[x, y, dx, dy], ...]}
  POST /api/continue            {"video"} -> its last frame as an image
  POST /api/heatmap             {"image", "point": [x, y]} -> overlay
  GET  /api/export/{id}.mp4|gif the video with its poke arrows
  GET  /api/health              liveness and counters

Positions and shoves are fractions of the image's width and height. Every
failure is {"error": sentence} with a 4xx status; an unexpected one is
logged and answered with 500 and no traceback.
"""

import asyncio
import base64
import functools
import logging
import pathlib
import tempfile
import time

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ii2v_jax.data import user_image
from ii2v_jax.io import video_io
from ii2v_jax.serve import engine as engine_lib
from ii2v_jax.serve import store, validate
from ii2v_jax.serve.validate import ApiError

STATIC = pathlib.Path(__file__).parent / "static"
FPS = 8
log = logging.getLogger(__name__)


class Server:
  """What the handlers share: the engine, the batcher, the stores."""

  def __init__(self, engine, batcher, *, fit="crop", capacity=64, **caps):
    self.engine = engine
    self.batcher = batcher
    self.fit = fit
    self.caps = {
      "max_bytes": caps.get("max_bytes", user_image.MAX_BYTES),
      "max_pixels": caps.get("max_pixels", user_image.MAX_PIXELS),
    }
    self.images = store.LruStore(capacity)
    self.videos = store.LruStore(4 * capacity)
    # Large uploads decode to ~120 MB each: at most two at a time.
    self.decoding = asyncio.Semaphore(2)
    self.default = None
    self.gallery = []
    self.requests = 0
    self.errors = 0

  def add_image(self, image_hw3, fit=None, label="", pinned=False):
    info = self.engine.info
    entry = store.make_image_entry(
      image_hw3,
      size=info.resolution,
      poke_size=info.poke_size,
      fit_mode=fit or self.fit,
      label=label,
    )
    return self.images.put(entry, pinned=pinned)

  def image(self, body: dict) -> store.ImageEntry:
    entry = self.images.get(validate.identifier(body, "image"))
    if entry is None:
      raise ApiError(404, "unknown image (the server forgot it: reload)")
    return entry

  def video(self, key) -> store.VideoEntry:
    entry = self.videos.get(key)
    if entry is None:
      raise ApiError(404, "unknown video (the server forgot it: poke again)")
    return entry


def endpoint(fn):
  """Runs a handler; ApiError and anything unexpected become JSON."""

  @functools.wraps(fn)
  async def wrapped(request):
    server = request.app.state.server
    server.requests += 1
    try:
      return await fn(request, server)
    except ApiError as e:
      server.errors += 1
      return JSONResponse({"error": e.message}, status_code=e.status)
    except Exception:
      server.errors += 1
      log.exception("internal error in %s", request.url.path)
      return JSONResponse({"error": "internal server error"}, 500)

  return wrapped


def png_data_url(rgb_hwc: np.ndarray) -> str:
  code = cv2.COLOR_RGBA2BGRA if rgb_hwc.shape[-1] == 4 else cv2.COLOR_RGB2BGR
  ok, png = cv2.imencode(".png", cv2.cvtColor(rgb_hwc, code))
  return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()


def ms(seconds: float) -> float:
  return round(seconds * 1e3, 2)


@endpoint
async def info(request, server: Server):
  m = server.engine.info
  return JSONResponse(
    {
      "model": {
        "workdir": pathlib.Path(m.workdir).name,
        "step": m.step,
        "resolution": m.resolution,
        "num_frames": m.num_frames,
        "parameters": m.parameters,
        "trained_max_pokes": m.max_pokes,
      },
      "max_pokes": validate.MAX_POKES,
      "batch_sizes": list(server.engine.batch_sizes),
      "fps": FPS,
      "fits": list(user_image.FITS),
      "fit": server.fit,
      "max_upload_bytes": server.caps["max_bytes"],
      "max_pixels": server.caps["max_pixels"],
      "default_image": server.default and server.default.describe(),
      "gallery": [e.describe() for e in server.gallery],
    }
  )


@endpoint
async def health(request, server: Server):
  return JSONResponse(
    {
      "ok": True,
      "requests": server.requests,
      "errors": server.errors,
      "batches": server.batcher.batches,
      "rows": server.batcher.rows,
      "images": len(server.images),
      "videos": len(server.videos),
    }
  )


@endpoint
async def image(request, server: Server):
  entry = server.images.get(request.path_params["key"])
  if entry is None:
    raise ApiError(404, "unknown image")
  return Response(entry.view_jpeg, media_type="image/jpeg")


@endpoint
async def upload(request, server: Server):
  fit = request.query_params.get("fit", server.fit)
  if fit not in user_image.FITS:
    raise ApiError(400, f"fit must be one of {', '.join(user_image.FITS)}")
  data = await validate.read_body(request, server.caps["max_bytes"])
  decode = functools.partial(user_image.decode_image, data, **server.caps)
  async with server.decoding:
    try:
      decoded = await run_in_threadpool(decode)
    except user_image.ImageError as e:
      raise ApiError(413 if e.too_large else 400, str(e)) from None
    entry = await run_in_threadpool(server.add_image, decoded, fit, "upload")
  return JSONResponse(entry.describe())


async def _json(request) -> dict:
  body = await validate.read_body(request, validate.MAX_JSON_BYTES)
  return validate.parse_json(body)


async def _rollout(server: Server, x0_nhw3, poke_nhw2):
  try:
    future = server.batcher.submit(x0_nhw3, poke_nhw2)
  except RuntimeError:
    raise ApiError(503, "the server is shutting down") from None
  return await asyncio.wrap_future(future)


def _timing(result, start: float, **extra) -> dict:
  return {
    "queue_ms": ms(result.queue_s),
    "compute_ms": ms(result.compute_s),
    "batch": result.batch,
    "batch_rows": result.rows,
    **{k: ms(v) for k, v in extra.items()},
    "server_ms": ms(time.perf_counter() - start),
  }


@endpoint
async def poke(request, server: Server):
  start = time.perf_counter()
  body = await _json(request)
  entry = server.image(body)
  pokes = validate.pokes(body.get("pokes"))
  pokes_px = [entry.fit.fractions_to_pixels(*p) for p in pokes]
  try:
    pmap = user_image.poke_map(entry.fit, pokes_px)
  except ValueError as e:
    raise ApiError(400, str(e)) from None
  result = await _rollout(server, entry.x0[None], pmap[None])
  t_enc = time.perf_counter()
  video = result.video_nthw3[0]
  sprite = png_data_url(
    np.concatenate([entry.x0[None], video]).reshape(-1, *video.shape[2:])
  )
  vid = server.videos.put(
    store.VideoEntry(store.new_id(), entry, pokes_px, video)
  )
  encode = time.perf_counter() - t_enc
  return JSONResponse(
    {
      "video": vid.id,
      "frames": sprite,
      "frame_count": len(video) + 1,
      "frame_size": int(video.shape[1]),
      "fps": FPS,
      "pokes": [list(p) for p in pokes],
      "timing": _timing(result, start, encode_ms=encode),
    }
  )


@endpoint
async def continue_from(request, server: Server):
  body = await _json(request)
  video = server.video(validate.identifier(body, "video"))
  last = np.ascontiguousarray(video.video[-1])
  entry = await run_in_threadpool(server.add_image, last, "crop", "continued")
  return JSONResponse(entry.describe())


@endpoint
async def heatmap(request, server: Server):
  start = time.perf_counter()
  body = await _json(request)
  entry = server.image(body)
  x, y = validate.location(body.get("point"), "the point")
  px = entry.fit.fractions_to_pixels(x, y, 0.0, 0.0)
  try:
    row, col = entry.fit.poke_to_model(*px)[:2]
  except ValueError as e:
    raise ApiError(400, str(e)) from None
  n = server.engine.max_batch
  maps = engine_lib.heat_pokes(row, col, server.engine.info, n)
  x0s = np.repeat(entry.x0[None], n, axis=0)
  result = await _rollout(server, x0s, maps)
  t_flow = time.perf_counter()
  heat = await run_in_threadpool(
    engine_lib.motion_heat, entry.x0, result.video_nthw3
  )
  overlay = heat_overlay(heat)
  return JSONResponse(
    {
      "heatmap": png_data_url(overlay),
      "max_motion_px": round(float(heat.max()), 3),
      "pokes": n,
      "cell": [int(row), int(col)],
      "timing": _timing(result, start, flow_ms=time.perf_counter() - t_flow),
    }
  )


def heat_overlay(heat_hw: np.ndarray, floor_px: float = 0.5) -> np.ndarray:
  """(S, S) motion in px -> RGBA uint8: inferno colours, opacity ~ motion.

  Normalised by the strongest motion, but never by less than `floor_px`,
  so a pixel that barely moves anything stays dim.
  """
  norm = np.clip(heat_hw / max(float(heat_hw.max()), floor_px), 0, 1)
  level = (norm * 255).astype(np.uint8)
  bgr = cv2.applyColorMap(level, cv2.COLORMAP_INFERNO)
  rgba = np.dstack([bgr[..., ::-1], (230 * norm).astype(np.uint8)])
  return np.ascontiguousarray(rgba)


def export_bytes(video: store.VideoEntry, fmt: str) -> bytes:
  """The video as the CLI writes it: first frame with arrows, MP4 or GIF."""
  fit = video.image.fit
  arrows = [fit.to_display(*p) for p in video.pokes_px]
  frames = video_io.poked_frames(video.image.first, video.video, arrows)
  with tempfile.TemporaryDirectory(prefix="ii2v_export_") as tmp:
    path = pathlib.Path(tmp) / f"video.{fmt}"
    write = video_io.write_mp4 if fmt == "mp4" else video_io.write_gif
    write(path, frames, fps=FPS)
    return path.read_bytes()


@endpoint
async def export(request, server: Server):
  fmt = request.path_params["fmt"]
  if fmt not in ("mp4", "gif"):
    raise ApiError(404, "export as .mp4 or .gif")
  video = server.video(request.path_params["key"])
  data = await run_in_threadpool(export_bytes, video, fmt)
  return Response(
    data,
    media_type="video/mp4" if fmt == "mp4" else "image/gif",
    headers={"content-disposition": f'attachment; filename="poke.{fmt}"'},
  )


async def page(request):
  return FileResponse(STATIC / "index.html")


async def http_error(request, exc: HTTPException):
  return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


def create_app(server: Server) -> Starlette:
  app = Starlette(
    routes=[
      Route("/", page),
      Route("/api/info", info),
      Route("/api/health", health),
      Route("/api/image/{key}", image),
      Route("/api/upload", upload, methods=["POST"]),
      Route("/api/poke", poke, methods=["POST"]),
      Route("/api/continue", continue_from, methods=["POST"]),
      Route("/api/heatmap", heatmap, methods=["POST"]),
      Route("/api/export/{key}.{fmt}", export),
      Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ],
    exception_handlers={HTTPException: http_error},
  )
  app.state.server = server
  return app
