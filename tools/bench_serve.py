"""Server time per poke of the web app, batch 1 and batched, and the heat map.

  python tools/bench_serve.py [--workdir runs/synthetic] [--data_dir data]
      [--repeats 20] [--skip_reference]

Measures the app in process (Starlette's TestClient; no sockets), for the
trained embedded default of the workdir and for a reference-width 64x64
generator (configs/iper.py, random weights). "server" is the handler's own
time: JSON parsing, the poke map, queue, rollout and PNG encoding of the
frames. Batched: `batch` pokes sent at once by as many threads; their
wall time divided by the count is the cost per poke. Prints a Markdown
table and the hardware.
"""

import argparse
import concurrent.futures
import os
import pathlib
import platform
import statistics
import sys
import time

# Run as a script from anywhere: the repository root holds the packages.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from configs import iper  # noqa: E402
from ii2v_jax.models import build  # noqa: E402
from ii2v_jax.serve import app as app_lib  # noqa: E402
from ii2v_jax.serve import batcher, engine  # noqa: E402


def serve(eng, data_images=()):
  server = app_lib.Server(eng, batcher.Batcher(eng).start())
  for img in data_images:
    server.gallery.append(server.add_image(img, pinned=True))
  return server


def poke_body(image_id, i):
  x = 0.3 + 0.4 * ((i * 37) % 100) / 100
  return {"image": image_id, "pokes": [[x, 0.5, 0.08, -0.05]]}


def one_at_a_time(client, image_id, repeats):
  times, compute = [], []
  for i in range(repeats + 1):
    t = client.post("/api/poke", json=poke_body(image_id, i)).json()["timing"]
    if i:  # The first call warms the handler path.
      times.append(t["server_ms"])
      compute.append(t["compute_ms"])
  return statistics.median(times), statistics.median(compute)


def at_once(client, image_id, count, rounds=3):
  """Wall ms per poke for `count` simultaneous pokes; batch sizes seen."""
  per_poke, batches = [], set()
  with concurrent.futures.ThreadPoolExecutor(count) as pool:
    for r in range(rounds):
      t0 = time.perf_counter()
      answers = list(
        pool.map(
          lambda i: client.post("/api/poke", json=poke_body(image_id, i)),
          range(r * count, (r + 1) * count),
        )
      )
      per_poke.append((time.perf_counter() - t0) * 1e3 / count)
      batches |= {a.json()["timing"]["batch"] for a in answers}
  return statistics.median(per_poke), sorted(batches)


def heat_map(client, image_id, repeats=3):
  times = []
  for _ in range(repeats):
    body = {"image": image_id, "point": [0.5, 0.5]}
    times.append(client.post("/api/heatmap", json=body).json()["timing"])
  return statistics.median(t["server_ms"] for t in times)


def measure(name, eng, image, repeats):
  server = serve(eng, [image])
  row = {"model": name, "params": eng.info.parameters}
  with TestClient(app_lib.create_app(server)) as client:
    image_id = server.gallery[0].id
    row["b1_server"], row["b1_model"] = one_at_a_time(client, image_id, repeats)
    big = eng.max_batch
    row["batched"], row["batches"] = at_once(client, image_id, big)
    row["batch"] = big
    row["heat"] = heat_map(client, image_id)
  server.batcher.stop()
  print(f"done {name}: {row}", flush=True)
  return row


def reference_engine(batch_sizes):
  c = iper.get_config("64")
  graphdef, _ = build.abstract_generator(c)
  params = build.initial_params(c)
  return engine.Engine(
    c, graphdef, params, workdir="(random weights)", batch_sizes=batch_sizes
  )


def hardware() -> str:
  d = jax.devices()[0]
  cpu = platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      names = [ln.split(":", 1)[1] for ln in f if ln.startswith("model name")]
    cpu = names[0].strip() if names else cpu
  except OSError:
    pass
  return (
    f"{d.platform} ({d.device_kind}), {cpu}, {os.cpu_count()} cores, "
    f"jax {jax.__version__}"
  )


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", default="runs/synthetic")
  p.add_argument("--data_dir", default=None)
  p.add_argument("--repeats", type=int, default=20)
  p.add_argument("--skip_reference", action="store_true")
  args = p.parse_args(argv)
  from ii2v_jax.data import user_image

  rows = []
  eng = engine.Engine.load(args.workdir, (1, 4, 16))
  if args.data_dir:
    eng.config.data.data_dir = args.data_dir
  image = user_image.dataset_images(eng.config.data, 1)[0]
  print(f"compiled the embedded default in {eng.warm_up():.1f} s", flush=True)
  rows.append(measure("embedded default", eng, image, args.repeats))
  if not args.skip_reference:
    ref = reference_engine((1, 4))
    print(f"compiled the reference width in {ref.warm_up():.1f} s", flush=True)
    rows.append(measure("reference width 64x64", ref, image, args.repeats // 4))
  print(f"\nhardware: {hardware()}\n")
  print(
    "| model | parameters | server per poke, batch 1 (rollout) "
    "| per poke, batched | heat map |"
  )
  print("|---|---|---|---|---|")
  for r in rows:
    print(
      f"| {r['model']} | {r['params']:,} | {r['b1_server']:.0f} ms "
      f"({r['b1_model']:.0f} ms) | {r['batched']:.0f} ms ({r['batch']} at "
      f"once, batches {r['batches']}) | {r['heat']:.0f} ms |"
    )
  return 0


if __name__ == "__main__":
  sys.exit(main())
