"""A queue that batches concurrent requests into one jitted call.

One worker thread owns the model. While it computes a batch, new requests
wait in the queue; the next round takes as many of them as fit in the
largest batch size, so a burst of pokes costs a few padded calls instead
of one call each, and nothing is compiled while serving.
"""

import concurrent.futures
import dataclasses
import queue
import threading
import time

import numpy as np


@dataclasses.dataclass
class Result:
  video_nthw3: np.ndarray  # uint8 (N, T, S, S, 3): this request's rows.
  queue_s: float  # Waiting before its batch started.
  compute_s: float  # The batch's call.
  batch: int  # Padded batch size the request ran in.
  rows: int  # Real rows in that batch (all requests).


@dataclasses.dataclass
class _Job:
  x0_nhw3: np.ndarray
  poke_nhw2: np.ndarray
  future: concurrent.futures.Future
  queued_at: float


class Batcher:
  """Runs `engine.run` on a worker thread over batched jobs."""

  def __init__(self, engine):
    self.engine = engine
    self._queue: queue.Queue = queue.Queue()
    self._held: _Job | None = None  # A job that did not fit last round.
    self._stop = threading.Event()
    self._thread = threading.Thread(
      target=self._loop, name="ii2v-batcher", daemon=True
    )
    self.batches = 0
    self.rows = 0

  def start(self) -> "Batcher":
    self._thread.start()
    return self

  def stop(self) -> None:
    self._stop.set()
    self._queue.put(None)
    self._thread.join(timeout=30)

  def submit(self, x0_nhw3, poke_nhw2) -> concurrent.futures.Future:
    """Queues N rows (N <= the largest batch size); a future of Result."""
    n = len(x0_nhw3)
    if not 1 <= n <= self.engine.max_batch or len(poke_nhw2) != n:
      raise ValueError(f"a job holds 1..{self.engine.max_batch} rows, got {n}")
    if self._stop.is_set():
      raise RuntimeError("the batcher is stopped")
    fut = concurrent.futures.Future()
    self._queue.put(_Job(x0_nhw3, poke_nhw2, fut, time.perf_counter()))
    return fut

  def _next_jobs(self) -> list[_Job]:
    """Blocks for one job, then takes queued ones while they fit."""
    first = self._held or self._queue.get()
    self._held = None
    if first is None:
      return []
    jobs, rows = [first], len(first.x0_nhw3)
    while True:
      try:
        job = self._queue.get_nowait()
      except queue.Empty:
        break
      if job is None:
        self._stop.set()
        break
      if rows + len(job.x0_nhw3) > self.engine.max_batch:
        self._held = job
        break
      jobs.append(job)
      rows += len(job.x0_nhw3)
    return jobs

  def _loop(self) -> None:
    while not self._stop.is_set():
      jobs = self._next_jobs()
      # Requests whose client left are dropped before computing.
      jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
      if jobs:
        self._run(jobs)
    if self._held is not None:
      self._held.future.cancel()

  def _run(self, jobs: list[_Job]) -> None:
    start = time.perf_counter()
    try:
      video = self.engine.run(
        np.concatenate([j.x0_nhw3 for j in jobs]),
        np.concatenate([j.poke_nhw2 for j in jobs]),
      )
    except Exception as e:  # Reported to each waiting request.
      for j in jobs:
        j.future.set_exception(e)
      return
    compute = time.perf_counter() - start
    rows = len(video)
    batch = self.engine.bucket(rows)
    self.batches += 1
    self.rows += rows
    i = 0
    for j in jobs:
      n = len(j.x0_nhw3)
      j.future.set_result(
        Result(video[i : i + n], start - j.queued_at, compute, batch, rows)
      )
      i += n
