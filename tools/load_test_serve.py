"""Load test of the web app: many clients poking at once, on loopback.

  python tools/load_test_serve.py [--workdir runs/synthetic]
      [--data_dir data] [--clients 100] [--pokes 5] [--time_limit 600]
      [--batch_sizes 1,4,16]

Starts `python -m ii2v_jax.serve` on 127.0.0.1 (a free port), then
`clients` threads each send `pokes` pokes (1 to 3 arrows at random
places on the default image, as the page sends them) and check every
answer. Bounded: at most clients x pokes requests, each with a timeout,
and the whole run stops at --time_limit. Prints every request answered,
errors, server restarts, p50/p95 latency, pokes/s, the batch sizes the
queue formed and the server's memory (RSS) before and after.
"""

import argparse
import collections
import concurrent.futures
import json
import pathlib
import sys
import time
import urllib.error
import urllib.request

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from tools import serve_browser  # noqa: E402


def rss_mib(pid: int) -> float:
  for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
    if line.startswith("VmRSS:"):
      return int(line.split()[1]) / 1024
  return float("nan")


def call(url, path, body=None, timeout=120):
  data = None if body is None else json.dumps(body).encode()
  req = urllib.request.Request(
    url + path.lstrip("/"),
    data=data,
    headers={"content-type": "application/json"},
  )
  with urllib.request.urlopen(req, timeout=timeout) as r:
    return r.status, json.loads(r.read())


def client(url, image_id, pokes, seed, deadline):
  """One user: `pokes` requests; a list of (ok, latency s, timing|error)."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(pokes):
    if time.monotonic() > deadline:
      out.append((False, 0.0, "time limit reached before sending"))
      continue
    n = int(rng.integers(1, 4))
    arrows = [
      [*rng.uniform(0.1, 0.9, 2), *rng.uniform(-0.15, 0.15, 2)]
      for _ in range(n)
    ]
    body = {"image": image_id, "pokes": [[float(v) for v in a] for a in arrows]}
    t0 = time.perf_counter()
    try:
      status, answer = call(url, "/api/poke", body)
      ok = status == 200 and answer.get("frame_count", 0) > 1
      out.append((ok, time.perf_counter() - t0, answer.get("timing")))
    except (urllib.error.URLError, OSError, ValueError) as e:
      out.append((False, time.perf_counter() - t0, repr(e)))
  return out


def report(results, wall, rss_before, rss_after, alive, expected):
  flat = [r for per_client in results for r in per_client]
  ok = [r for r in flat if r[0]]
  errors = [r for r in flat if not r[0]]
  lat = np.array([r[1] for r in ok]) * 1e3
  batches = collections.Counter(r[2]["batch"] for r in ok)
  server = np.array([r[2]["server_ms"] for r in ok])
  queue = np.array([r[2]["queue_ms"] for r in ok])
  print(f"requests:          {len(flat)} of {expected} sent")
  print(f"answered:          {len(ok) + len(errors)} ({len(ok)} ok)")
  print(f"errors:            {len(errors)}")
  for e in errors[:5]:
    print(f"  {e[2]}")
  print(f"server restarts:   {0 if alive else 1} (process alive: {alive})")
  if len(lat):
    print(
      f"latency (client):  p50 {np.percentile(lat, 50):.0f} ms, "
      f"p95 {np.percentile(lat, 95):.0f} ms, max {lat.max():.0f} ms"
    )
    print(
      f"server time:       p50 {np.percentile(server, 50):.0f} ms "
      f"(queue p50 {np.percentile(queue, 50):.0f} ms)"
    )
  print(f"throughput:        {len(ok) / wall:.1f} pokes/s over {wall:.1f} s")
  print(f"batches formed:    {dict(sorted(batches.items()))}")
  print(
    f"server RSS:        {rss_before:.0f} MiB before, {rss_after:.0f} after"
  )
  return 0 if alive and not errors and len(ok) == expected else 1


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", default="runs/synthetic")
  p.add_argument("--data_dir", default=None)
  p.add_argument("--clients", type=int, default=100)
  p.add_argument("--pokes", type=int, default=5)
  p.add_argument("--time_limit", type=float, default=600)
  p.add_argument("--batch_sizes", default="1,4,16")
  args = p.parse_args(argv)
  extra = ["--host", "127.0.0.1", "--batch_sizes", args.batch_sizes]
  extra += ["--data_dir", args.data_dir] if args.data_dir else []
  with serve_browser.running_server(args.workdir, extra=extra) as (
    url,
    proc,
    _,
  ):
    _, info = call(url, "/api/info")
    if not info["default_image"]:
      raise SystemExit("the server has no default image: pass --data_dir")
    image_id = info["default_image"]["id"]
    rss_before = rss_mib(proc.pid)
    deadline = time.monotonic() + args.time_limit
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
      futures = [
        pool.submit(client, url, image_id, args.pokes, seed, deadline)
        for seed in range(args.clients)
      ]
      results = [f.result() for f in futures]
    wall = time.perf_counter() - t0
    alive = proc.poll() is None and call(url, "/api/health")[1]["ok"]
    rss_after = rss_mib(proc.pid)
  expected = args.clients * args.pokes
  return report(results, wall, rss_before, rss_after, alive, expected)


if __name__ == "__main__":
  sys.exit(main())
