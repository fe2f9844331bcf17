"""Precomputes optical flow for every video / frame folder, resumably.

  python -m flow.precompute --frames DIR_OR_GLOB [...] --out DIR \\
      [--method dis|raft] [--preset medium] [--min_size 256] \\
      [--weights raft.npz --variant large|small --iters 12] \\
      [--lag 1] [--stride 1] [--batch_size 8] [--dtype float16|float32]

For each source (see `flow.video_io.discover`) it writes
`DIR/<name>.npy`, an (N, H, W, 2) array: flow frame t -> frame t + lag for
t = 0, stride, 2 stride, ... (N pairs), pixels of the frame size, channel
0 = u (+x right), 1 = v (+y down). Files are written atomically and only
once their source is done, so an interrupted run resumes where it
stopped: existing outputs are skipped, leftover temporary files removed.
`DIR/flow_manifest.json` records the settings that determine the values;
a run with other settings into the same DIR is refused. A source that
cannot be read (corrupt, truncated, too short) is reported and skipped.
Exit status: 0 all done, 1 some sources failed, 2 bad usage / settings.

`precompute(...)` is the same as a library call (dataset builders use it).
"""

import argparse
import dataclasses
import fcntl
import functools
import json
import pathlib
import sys
import time

import numpy as np
from tqdm import tqdm

from flow import estimators, usage, video_io

MANIFEST = "flow_manifest.json"
LOCK = ".flow_precompute.lock"
FORMAT_VERSION = 1
DTYPES = ("float16", "float32")


class SettingsMismatchError(ValueError):
  """The output directory holds flow made with other settings."""


@dataclasses.dataclass
class Summary:
  """What one `precompute` call did, by source name."""

  computed: list[str] = dataclasses.field(default_factory=list)
  skipped: list[str] = dataclasses.field(default_factory=list)
  failed: dict[str, str] = dataclasses.field(default_factory=dict)
  pairs: int = 0  # Pairs estimated by this call.
  seconds: float = 0.0

  @property
  def pairs_per_s(self) -> float:
    return self.pairs / self.seconds if self.seconds > 0 else 0.0


def output_path(out_dir, name: str) -> pathlib.Path:
  """Where the flow of source `name` is stored."""
  return pathlib.Path(out_dir) / f"{name}.npy"


def make_manifest(
  method: str, options: dict | None, lag: int, stride: int, dtype: str
) -> dict:
  """The settings that determine the stored values (JSON-able)."""
  return {
    "format_version": FORMAT_VERSION,
    "estimator": estimators.estimator_identity(method, options),
    "lag": lag,
    "stride": stride,
    "dtype": dtype,
    "layout": "(N, H, W, 2) per source: flow frame t -> t + lag for t = 0, "
    "stride, ...; pixels; channels (u, v)",
  }


def check_manifest(out_dir: pathlib.Path, manifest: dict) -> None:
  """Writes the manifest into a new output directory, or checks it.

  Raises:
    SettingsMismatchError: `out_dir` was made with other settings.
  """
  path = out_dir / MANIFEST
  manifest = json.loads(json.dumps(manifest))  # Tuples -> lists.
  if not path.exists():
    text = json.dumps(manifest, indent=2) + "\n"
    video_io.write_atomic(path, lambda f: f.write(text.encode()))
    return
  try:
    stored = json.loads(path.read_text())
    stored = stored if isinstance(stored, dict) else {"manifest": stored}
  except (OSError, ValueError):
    raise SettingsMismatchError(
      f"{path} is unreadable; use another --out directory"
    ) from None
  keys = sorted(set(stored) | set(manifest))
  diff = [k for k in keys if stored.get(k) != manifest.get(k)]
  if diff:
    what = "; ".join(
      f"{k}: stored {stored.get(k)}, now {manifest.get(k)}" for k in diff
    )
    raise SettingsMismatchError(
      f"{out_dir} holds flow computed with other settings ({what}): use "
      "another --out directory, or delete this one to start over"
    )


def is_complete(path: pathlib.Path, dtype: str) -> bool:
  """Whether `path` is a finished output (a readable (N, H, W, 2) array)."""
  try:
    array = np.load(path, mmap_mode="r", allow_pickle=False)
  except (OSError, ValueError):
    return False
  return array.ndim == 4 and array.shape[-1] == 2 and array.dtype == dtype


def pair_batches(frames, lag: int, stride: int, batch_size: int):
  """Groups frames into pairs (t, t + lag), t = 0, stride, ..., in order.

  Streams: holds only the frames still waiting for their partner.

  Yields:
    (frames_a_nhw3, frames_b_nhw3), at most `batch_size` pairs each.
  """
  waiting, batch_a, batch_b = {}, [], []
  for index, frame in enumerate(frames):
    if index - lag in waiting:
      batch_a.append(waiting.pop(index - lag))
      batch_b.append(frame)
      if len(batch_a) == batch_size:
        yield np.stack(batch_a), np.stack(batch_b)
        batch_a, batch_b = [], []
    if index % stride == 0:
      waiting[index] = frame
  if batch_a:
    yield np.stack(batch_a), np.stack(batch_b)


def _flow_of(source, *, estimate, lag, stride, batch_size, dtype, bar):
  """(N, H, W, 2) flow of one source, in `dtype`.

  Raises:
    video_io.BadInputError: unreadable, too small or too short source.
  """
  flows = []
  frames = video_io.iter_frames(source)
  for a_nhw3, b_nhw3 in pair_batches(frames, lag, stride, batch_size):
    if min(a_nhw3.shape[1:3]) < 2:
      raise video_io.BadInputError(f"frames too small: {a_nhw3.shape[1:3]}")
    flows.append(estimate(a_nhw3, b_nhw3).astype(dtype))
    bar.update(len(a_nhw3))
  if not flows:
    raise video_io.BadInputError(f"too short: no frame pair (t, t + {lag})")
  return np.concatenate(flows)


def _fixed_batch(estimate, batch_size: int):
  """Pads short batches to `batch_size` by repeating the last pair, so a
  jitted network compiles one shape per frame size, not one per tail
  length (pairs are estimated independently of their batch mates)."""

  def run(a_nhw3: np.ndarray, b_nhw3: np.ndarray) -> np.ndarray:
    n = len(a_nhw3)
    if n == batch_size:
      return estimate(a_nhw3, b_nhw3)
    index = np.minimum(np.arange(batch_size), n - 1)
    return estimate(a_nhw3[index], b_nhw3[index])[:n]

  return run


def _check_args(lag: int, stride: int, batch_size: int, dtype: str) -> None:
  if min(lag, stride, batch_size) < 1:
    raise ValueError(
      f"lag, stride and batch_size must be >= 1, got {lag}, {stride}, "
      f"{batch_size}"
    )
  if dtype not in DTYPES:
    raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")


def _lock(out_dir: pathlib.Path):
  """An exclusive lock on `out_dir` (released when the process dies)."""
  handle = open(out_dir / LOCK, "w")  # Held until closed.
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    handle.close()
    raise RuntimeError(f"another precompute run is writing {out_dir}")
  return handle


def precompute(
  sources,
  out_dir,
  *,
  method: str = "dis",
  options: dict | None = None,
  lag: int = 1,
  stride: int = 1,
  batch_size: int = 8,
  dtype: str = "float16",
  progress: bool = True,
) -> Summary:
  """Flow of every source into `out_dir`, resuming an interrupted run.

  Args:
    sources: directories, video paths or glob patterns (one or a list),
      see `flow.video_io.discover`.
    out_dir: output directory; source `name` goes to `<out_dir>/name.npy`.
    method, options: the estimator, as `flow.estimate_flow(method=...,
      **options)` (e.g. {"preset": "medium"}; RAFT: {"weights": path,
      "variant": ..., "iters": ...}).
    lag: pairs are (t, t + lag).
    stride: pairs start at t = 0, stride, 2 stride, ...
    batch_size: pairs per `estimate_flow` call (RAFT: per device call).
    dtype: stored dtype, "float16" (half the disk; rounding error at most
      2^-11 relative, 0.016 px below 64 px) or "float32" (exact).
    progress: show a tqdm bar (pairs, pairs/s).

  Returns:
    The `Summary`: computed, skipped (already done) and failed sources.

  Raises:
    SettingsMismatchError: `out_dir` holds flow made with other settings.
    ValueError, FileNotFoundError: bad arguments or sources.
    RuntimeError: another run holds `out_dir`.
  """
  # Everything is checked before the first write (a rejected run leaves
  # no manifest that would refuse the corrected one).
  _check_args(lag, stride, batch_size, dtype)
  options = dict(options or {})
  estimators.check_options(method, options)
  manifest = make_manifest(method, options, lag, stride, dtype)
  found = video_io.discover(sources)
  out_dir = usage.writable_dir(out_dir, "out_dir")
  out_dir.mkdir(parents=True, exist_ok=True)
  with _lock(out_dir):
    check_manifest(out_dir, manifest)
    video_io.remove_temp_files(out_dir)
    if method == "raft":
      options.setdefault("batch_size", batch_size)
    estimate = functools.partial(
      estimators.estimate_flow, method=method, **options
    )
    if method == "raft":
      estimate = _fixed_batch(estimate, batch_size)
    flow_of = functools.partial(
      _flow_of,
      estimate=estimate,
      lag=lag,
      stride=stride,
      batch_size=batch_size,
      dtype=dtype,
    )
    return _run(found, out_dir, flow_of, dtype, progress)


def _run(found, out_dir, flow_of, dtype: str, progress: bool) -> Summary:
  """The loop of `precompute`: skip finished, compute, save atomically."""
  summary, start = Summary(), time.perf_counter()
  with tqdm(unit="pair", disable=not progress, dynamic_ncols=True) as bar:
    for i, source in enumerate(found):
      path = output_path(out_dir, source.name)
      if is_complete(path, dtype):
        summary.skipped.append(source.name)
        continue
      bar.set_description(f"{i + 1}/{len(found)} {source.name}")
      try:
        flow_nhw2 = flow_of(source, bar=bar)
      except video_io.BadInputError as e:
        summary.failed[source.name] = f"{source.path}: {e}"
        bar.write(f"skipped {source.path}: {e}", file=sys.stderr)
        continue
      video_io.save_npy_atomic(path, flow_nhw2)
      summary.computed.append(source.name)
      summary.pairs += len(flow_nhw2)
  summary.seconds = time.perf_counter() - start
  return summary


def format_summary(summary: Summary) -> str:
  """Human-readable report of a `precompute` call."""
  total = len(summary.computed) + len(summary.skipped) + len(summary.failed)
  lines = [
    f"{total} sources: {len(summary.computed)} computed ({summary.pairs} "
    f"pairs, {summary.pairs_per_s:.1f} pairs/s), {len(summary.skipped)} "
    f"already done, {len(summary.failed)} failed"
  ]
  lines += [f"  FAILED {n}: {why}" for n, why in summary.failed.items()]
  return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
  p = usage.Parser(
    description=__doc__.split("\n\n")[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
    epilog=__doc__.split("\n\n", 2)[2],
  )
  p.add_argument(
    "--frames",
    required=True,
    nargs="+",
    action="extend",
    help="directories, videos or glob patterns",
  )
  p.add_argument("--out", required=True, help="output directory")
  p.add_argument("--method", default="dis", choices=sorted(estimators.METHODS))
  p.add_argument("--preset", default="medium", help="DIS preset")
  p.add_argument(
    "--min_size",
    type=usage.at_least(0),
    default=256,
    help="upscale frames whose shorter side is below this",
  )
  p.add_argument("--weights", help="RAFT .npz (python -m flow.raft_convert)")
  p.add_argument("--variant", choices=("large", "small"), default=None)
  p.add_argument(
    "--iters", type=usage.at_least(1), default=12, help="RAFT iterations"
  )
  p.add_argument("--lag", type=usage.at_least(1), default=1)
  p.add_argument("--stride", type=usage.at_least(1), default=1)
  p.add_argument("--batch_size", type=usage.at_least(1), default=8)
  p.add_argument("--dtype", choices=DTYPES, default="float16")
  p.add_argument("--no_progress", action="store_true")
  return p


def options_from_args(args) -> dict:
  """`estimate_flow` options of the chosen method from parsed flags."""
  if args.method == "dis":
    return {"preset": args.preset, "min_size": args.min_size}
  return {
    "weights": args.weights,
    "variant": args.variant,
    "iters": args.iters,
    "min_size": args.min_size,
  }


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  options = options_from_args(args)
  try:
    estimators.check_options(args.method, options)
    usage.writable_dir(args.out, "--out")
  except ValueError as e:  # Option errors start with the option's name.
    text = str(e) if str(e).startswith("--") else f"--{e}"
    print(f"error: {text}", file=sys.stderr)
    return 2
  try:
    summary = precompute(
      args.frames,
      args.out,
      method=args.method,
      options=options,
      lag=args.lag,
      stride=args.stride,
      batch_size=args.batch_size,
      dtype=args.dtype,
      progress=not args.no_progress,
    )
  except (ValueError, FileNotFoundError, RuntimeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(format_summary(summary))
  return 1 if summary.failed else 0


if __name__ == "__main__":
  sys.exit(main())
