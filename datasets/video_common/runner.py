"""Runs `video_examples` over many videos: worker processes, progress, skips.

Results come back in job order whatever the number of workers, so a build
is the same with 1 or 16 of them. Workers are spawned (not forked): the
parent may hold JAX or other threaded state that a fork would copy.
"""

import collections
import concurrent.futures
import functools
import itertools
import multiprocessing
import pathlib
from collections.abc import Callable, Iterable, Iterator

import cv2
from tqdm import tqdm

from datasets.video_common import clips
from datasets.video_common.report import BuildReport
from flow.video_io import BadInputError


def _init_worker() -> None:
  # One OpenCV thread per worker: the processes already fill the cores.
  cv2.setNumThreads(1)


def ordered_map(
  fn: Callable, items: Iterable, num_workers: int = 0
) -> Iterator:
  """`map(fn, items)`, in `num_workers` spawned processes (0: in this one).

  At most 2 x num_workers results wait in memory: a slow consumer (the
  dataset writer) holds back the workers instead of piling up clips.
  """
  if num_workers <= 0:
    yield from map(fn, items)
    return
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(
    num_workers, mp_context=context, initializer=_init_worker
  ) as pool:
    items = iter(items)
    pending = collections.deque(
      pool.submit(fn, item) for item in itertools.islice(items, 2 * num_workers)
    )
    while pending:
      result = pending.popleft().result()
      for item in itertools.islice(items, 1):
        pending.append(pool.submit(fn, item))
      yield result


def try_video(job: clips.VideoJob, spec: clips.ClipSpec):
  """(VideoResult, None), or (None, reason) for a video to skip."""
  try:
    return clips.video_examples(job, spec), None
  except BadInputError as e:
    return None, str(e)
  except (cv2.error, ValueError, OSError) as e:  # Odd frames, bad files.
    first_line = (str(e).strip().splitlines() or [""])[0]
    return None, f"{type(e).__name__}: {first_line}"


def generate_examples(
  jobs: list[clips.VideoJob],
  spec: clips.ClipSpec,
  *,
  split: str,
  report: BuildReport,
  root=None,
  num_workers: int = 0,
  progress: bool = True,
) -> Iterator[tuple[str, dict]]:
  """(key, example) of every clip of every readable video, in job order.

  Skipped videos go to `report` with their reason (and path relative to
  `root` if given), never half-way: a video's clips are yielded only once
  all of them are made.
  """
  work = functools.partial(try_video, spec=spec)
  bar = tqdm(total=len(jobs), desc=split, unit="video", disable=not progress)
  clips_done = collections.Counter()
  with bar:
    for job, (result, reason) in zip(
      jobs, ordered_map(work, jobs, num_workers)
    ):
      bar.update(1)
      if result is None:
        path = pathlib.Path(job.source.path)
        report.skip(split, path.relative_to(root) if root else path, reason)
        clips_done["skipped"] += 1
      else:
        report.add(
          split,
          len(result.examples),
          result.frames_decoded,
          result.seconds,
          result.cut_clips,
        )
        clips_done["clips"] += len(result.examples)
        yield from result.examples
      bar.set_postfix(clips_done, refresh=False)
