"""A seeded fuzz harness for the command lines (used by test_fuzz_cli.py).

A `Case` is an entry point, an argv and what is allowed: `USER_ERROR`
(exit status 2 and exactly one `error:` line on stderr) or `FINE` (exit
0). `run_case` runs it in-process (the CLI's main with stdout / stderr
captured, SystemExit caught, an interval timer against hangs) or as a
subprocess (the same command a user types); `problems` lists what went
wrong: a traceback, a hang, another exit status, a message of several
lines, a protected file changed or gone.

To fuzz another CLI: add an `Entry` to ENTRIES (its in-process main and
its `python -m` module) and build cases with `mutate(...)` from a table of
values it must refuse.
"""

import contextlib
import dataclasses
import hashlib
import io
import pathlib
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
USER_ERROR, FINE = "user error", "fine"
# Library log records (absl / TFDS) on stderr are not the CLI's message.
LOG_RECORD = re.compile(
  r"^(WARNING|INFO):absl:|^[IW]\d{4} |^WARNING: Logging before flag parsing"
)


class Hang(Exception):
  """The case ran past its timeout."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """An entry point: `call(argv)` in-process, `command` + argv outside."""

  call: Callable
  command: tuple


@dataclasses.dataclass(frozen=True)
class Case:
  entry: str
  argv: tuple
  expect: str = USER_ERROR
  subprocess: bool = False
  timeout: float = 60.0

  def __str__(self) -> str:
    where = "subprocess" if self.subprocess else "in-process"
    return f"{self.entry} {' '.join(self.argv)} ({where})"


@dataclasses.dataclass
class Outcome:
  status: object  # Exit status, or "hang" / "traceback".
  stdout: str
  stderr: str
  seconds: float


def _launch(argv: list[str]):
  from absl import app

  import launch

  argv = ["launch.py", *argv]
  saved = sys.argv
  sys.argv = argv  # config_flags reads its overrides from sys.argv.
  try:
    app.run(launch.main, argv=argv, flags_parser=launch.parse)
  finally:
    sys.argv = saved


def _precompute(argv: list[str]):
  from flow import precompute

  return precompute.main(argv)


def _video_folder(argv: list[str]):
  from datasets.video_folder import build

  return build.main(argv)


def _module_main(module: str):
  """The `main(argv)` of a `python -m` module, imported on first use."""

  def call(argv: list[str]):
    import importlib

    name = module + ".__main__" if module.count(".") == 1 else module
    try:
      return importlib.import_module(module).main(argv)
    except AttributeError:
      return importlib.import_module(name).main(argv)

  return call


ENTRIES = {
  "launch": Entry(_launch, (str(ROOT / "launch.py"),)),
  "precompute": Entry(_precompute, ("-m", "flow.precompute")),
  "video_folder": Entry(_video_folder, ("-m", "datasets.video_folder.build")),
  "sample": Entry(_module_main("ii2v_jax.sample"), ("-m", "ii2v_jax.sample")),
  "evaluate": Entry(
    _module_main("ii2v_jax.evaluate.protocol"), ("-m", "ii2v_jax.evaluate")
  ),
  "convert": Entry(
    _module_main("ii2v_jax.convert.converter"), ("-m", "ii2v_jax.convert")
  ),
}


def _in_process(entry: Entry, argv: list[str], timeout: float) -> Outcome:
  out, err = io.StringIO(), io.StringIO()

  def alarm(signum, frame):
    raise Hang()

  old = signal.signal(signal.SIGALRM, alarm)
  signal.setitimer(signal.ITIMER_REAL, timeout)
  start = time.perf_counter()
  try:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      status = entry.call(list(argv))
  except SystemExit as e:
    status = e.code
  except Hang:
    status = "hang"
  except Exception as e:  # noqa: BLE001 (what the fuzz looks for)
    status = "traceback"
    err.write(f"Traceback: {type(e).__name__}: {e}\n")
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)
  status = 0 if status is None else status
  if isinstance(status, str) and status not in ("hang", "traceback"):
    err.write(status + "\n")  # sys.exit("message") prints it, status 1.
    status = 1
  seconds = time.perf_counter() - start
  return Outcome(status, out.getvalue(), err.getvalue(), seconds)


def _outside(entry: Entry, argv: list[str], timeout: float) -> Outcome:
  start = time.perf_counter()
  try:
    done = subprocess.run(
      [sys.executable, *entry.command, *argv],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=timeout,
    )
  except subprocess.TimeoutExpired as e:
    text = (e.stderr or b"").decode(errors="replace")
    return Outcome("hang", "", text, time.perf_counter() - start)
  seconds = time.perf_counter() - start
  return Outcome(done.returncode, done.stdout, done.stderr, seconds)


def run_case(case: Case) -> Outcome:
  entry = ENTRIES[case.entry]
  runner = _outside if case.subprocess else _in_process
  return runner(entry, list(case.argv), case.timeout)


def snapshot(*roots) -> dict[str, str]:
  """{path: sha256} of every file under the roots."""
  out = {}
  for root in roots:
    for path in sorted(pathlib.Path(root).rglob("*")):
      if path.is_file():
        out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
  return out


def problems(case: Case, outcome: Outcome, before: dict, after: dict):
  """What went wrong in one case (empty: nothing)."""
  found = []
  text = outcome.stdout + outcome.stderr
  if outcome.status == "hang":
    found.append(f"hang after {outcome.seconds:.0f} s")
  if "Traceback" in text or outcome.status == "traceback":
    found.append("traceback: " + text.strip().splitlines()[-1][:300])
  lines = [
    line
    for line in outcome.stderr.splitlines()
    if line.strip() and not LOG_RECORD.match(line)
  ]
  errors = [line for line in lines if "error" in line.lower()]
  if case.expect == USER_ERROR:
    if outcome.status != 2:
      found.append(f"exit status {outcome.status}, want 2")
    if len(lines) != 1 or not lines[0].startswith("error: "):
      found.append(f"want one 'error:' line, got {lines[:3]}")
  elif outcome.status != 0:
    found.append(f"exit status {outcome.status}, want 0: {errors[:2]}")
  gone = sorted(set(before) - set(after))
  changed = sorted(
    k for k in before.keys() & after.keys() if before[k] != after[k]
  )
  if gone:
    found.append(f"{len(gone)} protected files gone, e.g. {gone[0]}")
  if changed:
    found.append(f"{len(changed)} protected files changed, e.g. {changed[0]}")
  return found


def mutate(
  entry: str,
  base: list[str],
  table: list,
  rng: random.Random,
  count: int,
  *,
  most: int = 3,
) -> list[Case]:
  """`count` cases: `base` plus 1..most entries of `table` (each a list
  of argv words the CLI must refuse), drawn with `rng`."""
  cases = []
  for _ in range(count):
    picks = rng.sample(table, rng.randint(1, min(most, len(table))))
    cases.append(Case(entry, tuple(base + [w for p in picks for w in p])))
  return cases
