"""One process of a multi-process test run: `python distributed_worker.py
PORT ID MODE` with 4 fake CPU devices (set by the caller's environment).

MODE "sum": a cross-process sum over a global array, printed as JSON.
MODE "hang": process 1 dies at once; process 0 waits at a collective.
"""

import json
import os
import sys

import numpy as np


def main(port: str, process_id: int, mode: str) -> None:
  import jax

  from ii2v_jax.parallel import distributed, sharding

  distributed.HEARTBEAT_TIMEOUT_S = 10
  topo = distributed.start(
    coordinator=f"127.0.0.1:{port}", num_processes=2, process_id=process_id
  )
  mesh = sharding.make_mesh()
  if mode == "hang" and process_id == 1:
    os._exit(3)
  local = np.full((4, 2), process_id + 1, np.float32)  # 4 rows per process
  x = sharding.to_global({"x": local}, mesh)["x"]
  total = jax.jit(lambda a: a.sum(), out_shardings=sharding.replicated(mesh))
  value = float(total(x))
  print(json.dumps({**topo.__dict__, "sum": value, "shape": list(x.shape)}))


if __name__ == "__main__":
  main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
