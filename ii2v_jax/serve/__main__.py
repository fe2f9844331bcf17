"""Poke images in a browser: serves the interactive page.

  python -m ii2v_jax.serve [--workdir runs/synthetic] [--port 8000]
      [--host 127.0.0.1] [--data_dir DIR] [--fit crop|pad|squash]
      [--batch_sizes 1,4,16]

Loads the workdir's newest checkpoint, compiles the rollout for every
batch size (jax's persistent compilation cache makes a restart fast), and
only then prints the URL. Binds 127.0.0.1 unless --host says otherwise.
"""

import argparse
import ipaddress
import os
import pathlib
import socket
import sys
import time

DEFAULT_CACHE = pathlib.Path.home() / ".cache" / "ii2v_jax" / "xla"
GALLERY = 12


def parse_args(argv):
  p = argparse.ArgumentParser(
    prog="python -m ii2v_jax.serve", description=__doc__.splitlines()[0]
  )
  p.add_argument("--workdir", default="runs/synthetic", help="trained run")
  p.add_argument("--port", type=int, default=8000, help="0: a free port")
  p.add_argument(
    "--host", default="127.0.0.1", help="another address is reachable by others"
  )
  p.add_argument(
    "--data_dir",
    default=None,
    help="dataset folder for the default image and gallery (default: the "
    "workdir's config)",
  )
  p.add_argument(
    "--fit",
    choices=("crop", "pad", "squash"),
    default="crop",
    help="how uploads become the model's square (the page can change it)",
  )
  p.add_argument("--batch_sizes", default="1,4,16", help="compiled batch sizes")
  p.add_argument(
    "--cache_dir", default=str(DEFAULT_CACHE), help="compilation cache"
  )
  args = p.parse_args(argv)
  try:
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
  except ValueError:
    p.error(f"--batch_sizes must be integers like 1,4,16: {args.batch_sizes}")
  if min(args.batch_sizes) < 1:
    p.error("--batch_sizes must all be at least 1")
  if not 0 <= args.port < 65536:
    p.error(f"--port must be 0..65535, got {args.port}")
  return args


def is_loopback(host: str) -> bool:
  if host == "localhost":
    return True
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return False


def enable_compilation_cache(cache_dir: str) -> None:
  """jax's persistent cache, unless the environment already chose one."""
  import jax

  if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    pathlib.Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", cache_dir)


def bind(host: str, port: int) -> socket.socket:
  family = socket.AF_INET6 if ":" in host else socket.AF_INET
  sock = socket.socket(family, socket.SOCK_STREAM)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  try:
    sock.bind((host, port))
  except OSError as e:
    sock.close()
    raise SystemExit(f"error: cannot listen on {host}:{port}: {e.strerror}")
  sock.listen(128)
  sock.set_inheritable(True)
  return sock


def build_server(args):
  """Loads, warms up and returns (Server, seconds of warm-up)."""
  from ii2v_jax.data import pipeline, user_image
  from ii2v_jax.serve import app, batcher, engine

  eng = engine.Engine.load(args.workdir, args.batch_sizes)
  warm = eng.warm_up()
  server = app.Server(eng, batcher.Batcher(eng).start(), fit=args.fit)
  data_cfg = eng.config.data
  if args.data_dir:
    data_cfg.data_dir = args.data_dir
  try:
    images = user_image.dataset_images(data_cfg, GALLERY)
  except pipeline.DataError as e:
    print(f"no gallery: {e}", file=sys.stderr)
    images = []
  for i, img in enumerate(images):
    entry = server.add_image(img, "crop", f"test clip {i}", pinned=True)
    server.gallery.append(entry)
  server.default = server.gallery[0] if server.gallery else None
  return server, warm


def main(argv=None) -> int:
  args = parse_args(argv)
  if not is_loopback(args.host):
    print(
      f"warning: serving on {args.host}: anyone who can reach this machine "
      "can use the page (there is no login)",
      file=sys.stderr,
    )
  if not (pathlib.Path(args.workdir) / "checkpoints").is_dir():
    print(
      f"error: no checkpoint in {args.workdir}; train one first: make demo",
      file=sys.stderr,
    )
    return 2
  sock = bind(args.host, args.port)
  enable_compilation_cache(args.cache_dir)
  import uvicorn

  from ii2v_jax.io import checkpoint
  from ii2v_jax.serve import app

  t0 = time.perf_counter()
  try:
    server, warm = build_server(args)
  except (checkpoint.CheckpointError, ValueError, LookupError) as e:
    print(f"error: cannot load {args.workdir}: {e}", file=sys.stderr)
    return 2
  except AttributeError as e:  # A config.json without the keys it needs.
    print(f"error: {args.workdir}/config.json lacks {e}", file=sys.stderr)
    return 2
  port = sock.getsockname()[1]
  host = f"[{args.host}]" if ":" in args.host else args.host
  print(
    f"model step {server.engine.info.step}, compiled batch sizes "
    f"{list(server.engine.batch_sizes)} in {warm:.1f} s "
    f"(ready after {time.perf_counter() - t0:.1f} s)",
    flush=True,
  )
  print(f"serving on http://{host}:{port}/  (Ctrl-C stops)", flush=True)
  config = uvicorn.Config(app.create_app(server), log_level="warning")
  try:
    uvicorn.Server(config).run(sockets=[sock])
  finally:
    server.batcher.stop()
  return 0


if __name__ == "__main__":
  sys.exit(main())
