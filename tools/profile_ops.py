"""Per-op CPU profile of a benchmark workload: where the time goes.

Runs in this repo's venv (jax only):

  .venv/bin/python tools/profile_ops.py --workload train_step_pixel_loss
  .venv/bin/python tools/profile_ops.py --workload sample_64 [--runs 3]
      [--top 30] [--trace_dir /tmp/ii2v_profile] [--json out.json]

Builds the workload with ii2v_jax/bench.py's builders (sample_<S>[_b<B>],
train_step, train_step_pixel_loss, train_step_gan), compiles it, runs it
once, then captures a jax.profiler trace of --runs executions. The XLA:CPU
runtime names each traced thunk after its HLO instruction (`ynn_fusion.8`,
`concatenate.41`, ...); the tool joins those names with the compiled
module's text (`compiled.as_text()`) and describes the convolutions and dots
inside each fusion: kernel size, stride, dilations, feature counts, spatial
size, batch, FLOPs, and whether it is a forward conv, the backward-input
(transposed, lhs-dilated) conv or the backward-filter conv of one. Self time
is an event's duration less the traced ops nested in it on the same
thread; ops on different threads may overlap, so the sum of op times can
exceed the wall time. It prints the top ops by self time and the totals by
kind, with the achieved GFLOP/s (useful FLOPs: the zeros an lhs dilation
inserts are not counted).

Reading the trace: jax's profiler writes
`<dir>/plugins/profile/<ts>/<host>.trace.json.gz` (Chrome trace events)
beside `<host>.xplane.pb`; the tool reads the former. Where only the
xplane.pb exists, --xprof_python names an interpreter with the `xprof`
package (kept out of this venv, e.g. /tmp/pv/bin/python) that converts it.
"""

import argparse
import collections
import gzip
import json
import math
import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = ("forward conv", "backward-input conv", "backward-filter conv")
KINDS += ("dot", "other")
SHAPE = re.compile(r"^[a-z]+\d*\[([\d,]*)\]")
XPROF_CODE = (
  "import sys; from xprof.convert import raw_to_tool_data as r\n"
  "d, _ = r.xspace_to_tool_data([sys.argv[1]], 'trace_viewer', {})\n"
  "sys.stdout.write(d if isinstance(d, str) else d.decode())\n"
)


# --- the compiled module -----------------------------------------------------


def _split_top(text: str) -> tuple[str, str]:
  """'(a, (b)), rest' -> ('a, (b)', ', rest') for text after '('."""
  depth = 1
  for i, ch in enumerate(text):
    depth += {"(": 1, ")": -1}.get(ch, 0)
    if depth == 0:
      return text[:i], text[i + 1 :]
  return text, ""


def parse_hlo(text: str) -> dict:
  """Instruction name -> {dims, op, operands, attrs}, module-wide."""
  instrs = {}
  for line in text.splitlines():
    line = line.strip()
    if line.startswith("ROOT "):
      line = line[5:]
    if not line.startswith("%") or " = " not in line:
      continue
    name, rest = line[1:].split(" = ", 1)
    if rest.startswith("("):  # a tuple type
      _, rest = _split_top(rest[1:])
      dims = None
    else:
      m = SHAPE.match(rest)
      dims = [int(d) for d in m.group(1).split(",") if d] if m else None
    m = re.match(r"\s*(?:\S+ )?([\w-]+)\((.*)$", rest)
    if not m:
      continue
    args, attrs = _split_top(m.group(2))
    instrs[name] = {
      "dims": dims,
      "op": m.group(1),
      "operands": re.findall(r"%([\w.-]+)", args),
      "attrs": attrs,
    }
  return instrs


def _window(attrs: str, key: str, n: int) -> list[int]:
  m = re.search(rf"\b{key}=([\dx]+)", attrs)
  return [int(v) for v in m.group(1).split("x")] if m else [1] * n


def describe_conv(ins: dict, instrs: dict) -> dict:
  """Kind, text and useful FLOPs of one convolution (XLA:CPU keeps them
  in b01f_01io->b01f form: NHWC input, HWIO kernel, NHWC output)."""
  out = ins["dims"]
  lhs = instrs[ins["operands"][0]]["dims"]
  rhs = instrs[ins["operands"][1]]["dims"]
  n = len(out) - 2
  size = _window(ins["attrs"], "size", n)
  stride = _window(ins["attrs"], "stride", n)
  lhs_d = _window(ins["attrs"], "lhs_dilate", n)
  rhs_d = _window(ins["attrs"], "rhs_dilate", n)
  flops = 2.0 * math.prod(out) * math.prod(size) * rhs[-2]
  fmt = lambda v: "x".join(map(str, v))
  sp_in, sp_out = fmt(lhs[1:-1]), fmt(out[1:-1])
  if math.prod(size) > math.prod(out[1:-1]):
    # dW: the "kernel" is the output gradient, the output is the weights
    # (Cin, kh, kw, Cout), the contraction runs over batch and space.
    kind = "backward-filter conv"
    s = f" s{fmt(rhs_d)}" if max(rhs_d) > 1 else ""
    text = (
      f"dW of {sp_out}{s} conv {out[0]}->{out[-1]} over {fmt(size)}, "
      f"batch {lhs[-1]}"
    )
  elif max(lhs_d) > 1 or "transpose(" in ins["attrs"]:
    kind = "backward-input conv"
    flops /= math.prod(lhs_d)  # The inserted zeros do no useful work.
    # Named after the forward conv: its input is this conv's output.
    s = f" s{fmt(lhs_d)} (lhs-dilated)" if max(lhs_d) > 1 else ""
    text = (
      f"dX of {fmt(size)}{s} conv {out[-1]}->{lhs[-1]}, "
      f"{sp_out}->{sp_in}, batch {out[0]}"
    )
  else:
    kind = "forward conv"
    s = f" s{fmt(stride)}" if max(stride) > 1 else ""
    text = (
      f"{fmt(size)}{s} conv {lhs[-1]}->{out[-1]}, {sp_in}->{sp_out}, "
      f"batch {out[0]}"
    )
  return {"kind": kind, "text": text, "flops": flops}


def describe_dot(ins: dict, instrs: dict) -> dict:
  lhs = instrs[ins["operands"][0]]["dims"]
  m = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", ins["attrs"])
  k = math.prod(lhs[int(d)] for d in m.group(1).split(",") if d) if m else 1
  out = ins["dims"] or []
  text = f"dot {'x'.join(map(str, out))}, contracting {k}"
  return {"kind": "dot", "text": text, "flops": 2.0 * math.prod(out) * k}


def describe(name: str, instrs: dict, comps: dict) -> dict:
  """What the thunk `name` runs: its convolutions and dots (through the
  computations it calls, not through while/conditional bodies)."""
  found, seen = [], set()

  def visit(ins):
    if ins["op"] == "convolution":
      found.append(describe_conv(ins, instrs))
    elif ins["op"] == "dot":
      found.append(describe_dot(ins, instrs))
    if ins["op"] in ("while", "conditional", "call"):
      return
    for comp in re.findall(r"calls=%([\w.-]+)", ins["attrs"]):
      if comp not in seen:
        seen.add(comp)
        for member in comps.get(comp, ()):
          visit(instrs[member])

  ins = instrs.get(name)
  if ins is None:
    return {"kind": "other", "text": "", "flops": 0.0}
  visit(ins)
  if not found:
    return {"kind": "other", "text": ins["op"], "flops": 0.0}
  main = max(found, key=lambda f: f["flops"])
  text = "; ".join(f["text"] for f in found[:3])
  text += f" (+{len(found) - 3} more)" if len(found) > 3 else ""
  flops = sum(f["flops"] for f in found)
  return {"kind": main["kind"], "text": text, "flops": flops}


def computations(text: str) -> dict:
  """Computation name -> its instruction names."""
  comps, current = {}, None
  for line in text.splitlines():
    head = re.match(r"^(?:ENTRY )?%([\w.-]+) .*\{$", line)
    if head:
      current = comps.setdefault(head.group(1), [])
    elif line.startswith("}"):
      current = None
    elif current is not None:
      m = re.match(r"^\s*(?:ROOT )?%([\w.-]+) = ", line)
      if m:
        current.append(m.group(1))
  return comps


# --- the trace ---------------------------------------------------------------


def read_trace(trace_dir: pathlib.Path, xprof_python: str | None) -> list:
  """The Chrome trace events of the newest capture under trace_dir."""
  runs = sorted((trace_dir / "plugins" / "profile").iterdir())
  jsons = list(runs[-1].glob("*.trace.json.gz"))
  if jsons:
    with gzip.open(jsons[0], "rt") as f:
      return json.load(f)["traceEvents"]
  if not xprof_python:
    raise SystemExit(f"no *.trace.json.gz in {runs[-1]}; pass --xprof_python")
  (xplane,) = runs[-1].glob("*.xplane.pb")
  cmd = [xprof_python, "-c", XPROF_CODE, str(xplane)]
  return json.loads(subprocess.check_output(cmd))["traceEvents"]


def self_times(events: list, names: set) -> dict:
  """Op name -> [calls, self microseconds], over events named after HLO
  instructions; nesting is by time on each thread."""
  by_tid = collections.defaultdict(list)
  for e in events:
    if e.get("ph") == "X" and e.get("name") in names:
      by_tid[e["tid"]].append(e)
  out = collections.defaultdict(lambda: [0, 0.0])
  for evs in by_tid.values():
    evs.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
    stack = []  # [end, name]
    for e in evs:
      dur = float(e.get("dur", 0))
      while stack and stack[-1][0] <= e["ts"]:
        stack.pop()
      if stack:  # Nested: not its parent's own time.
        out[stack[-1][1]][1] -= dur
      out[e["name"]][0] += 1
      out[e["name"]][1] += dur
      stack.append([e["ts"] + dur, e["name"]])
  return dict(out)


# --- workloads ---------------------------------------------------------------


def build(workload: str):
  """(compiled executable, a function that runs it once and blocks)."""
  import jax

  from ii2v_jax import bench

  if workload.startswith("sample_"):
    res, batch = bench.parse_sample(workload)
    roll, _, args = bench.sample_workload(res, batch)
    compiled = roll.lower(*args).compile()
    return compiled, lambda: jax.block_until_ready(compiled(*args))
  step, st, b, vgg = bench.train_workload(workload)
  compiled = step.lower(st, b, vgg).compile()
  holder = {"st": st}

  def run():
    holder["st"], m = compiled(holder["st"], b, vgg)
    jax.block_until_ready(m)

  return compiled, run


def profile(args) -> dict:
  import jax

  print(f"interpreter: {sys.executable} (jax {jax.__version__})", flush=True)
  t0 = time.perf_counter()
  compiled, run = build(args.workload)
  print(f"compiled in {time.perf_counter() - t0:.1f} s", flush=True)
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  hlo = compiled.as_text()
  peak = None
  if not args.no_peak:
    from ii2v_jax import bench

    mm = bench.bench_matmul(3)
    peak = mm["flops"] / mm["seconds"] / 1e9
    print(f"fp32 2048x2048 matmul: {peak:,.0f} GFLOP/s", flush=True)
  run()  # Warm-up.
  trace_dir = pathlib.Path(args.trace_dir or tempfile.mkdtemp("_ii2v_prof"))
  walls = []
  jax.profiler.start_trace(str(trace_dir))
  for _ in range(args.runs):
    t0 = time.perf_counter()
    run()
    walls.append(time.perf_counter() - t0)
  jax.profiler.stop_trace()
  instrs = parse_hlo(hlo)
  comps = computations(hlo)
  times = self_times(read_trace(trace_dir, args.xprof_python), set(instrs))
  ops = []
  for name, (calls, us) in times.items():
    d = describe(name, instrs, comps)
    ops.append(
      {
        "op": name,
        "calls_per_run": calls / args.runs,
        "ms_per_run": us / 1e3 / args.runs,
        "gflop_per_run": d["flops"] * calls / args.runs / 1e9,
        "kind": d["kind"],
        "what": d["text"],
      }
    )
  ops.sort(key=lambda o: -o["ms_per_run"])
  return {
    "workload": args.workload,
    "runs": args.runs,
    "wall_ms_per_run": [w * 1e3 for w in walls],
    "xla_gflop": float(cost.get("flops", float("nan"))) / 1e9,
    "matmul_peak_gflops": peak,
    "trace_dir": str(trace_dir),
    "ops": ops,
  }


# --- report ------------------------------------------------------------------


def _rate(gflop: float, ms: float, peak: float | None = None) -> str:
  if not gflop or ms <= 0:
    return ""
  rate = gflop / ms * 1e3
  return f"{rate:,.0f}" + (f" ({100 * rate / peak:.0f} %)" if peak else "")


def report(result: dict, top: int) -> str:
  ops, peak = result["ops"], result.get("matmul_peak_gflops")
  total = sum(o["ms_per_run"] for o in ops)
  wall = sorted(result["wall_ms_per_run"])[len(result["wall_ms_per_run"]) // 2]
  lines = [
    f"workload {result['workload']}: wall {wall:,.0f} ms per run (median "
    f"of {result['runs']}), op self time {total:,.0f} ms per run (summed "
    f"over threads), XLA cost analysis {result['xla_gflop']:,.1f} GFLOP "
    "(a rolled loop's body counted once); trace in "
    f"{result.get('trace_dir')}",
    f"fp32 matmul peak: {peak or float('nan'):,.0f} GFLOP/s (GFLOP/s "
    "columns: in brackets, % of it); GFLOP counted by this tool: every "
    "kernel tap, padding included, no lhs-dilation zeros",
    "",
    "| kind | ms/run | % of op time | GFLOP/run | GFLOP/s |",
    "|---|---|---|---|---|",
  ]
  for kind in KINDS:
    sel = [o for o in ops if o["kind"] == kind]
    ms = sum(o["ms_per_run"] for o in sel)
    gf = sum(o["gflop_per_run"] for o in sel)
    lines.append(
      f"| {kind} | {ms:,.1f} | {100 * ms / total:.1f} % | "
      f"{gf:,.1f} | {_rate(gf, ms, peak)} |"
    )
  shapes = collections.defaultdict(lambda: [0.0, 0.0])
  for o in ops:  # The same layer shape at any batch: one row.
    if o["kind"] != "other":
      key = (o["kind"], re.sub(r", batch \d+", "", o["what"]))
      shapes[key][0] += o["ms_per_run"]
      shapes[key][1] += o["gflop_per_run"]
  lines += ["", "| kind | what (any batch) | ms/run | % | GFLOP/s |"]
  lines.append("|---|---|---|---|---|")
  for (kind, what), (ms, gf) in sorted(
    shapes.items(), key=lambda kv: -kv[1][0]
  )[:top]:
    lines.append(
      f"| {kind} | {what} | {ms:,.1f} | {100 * ms / total:.1f} % | "
      f"{_rate(gf, ms)} |"
    )
  lines += [
    "",
    "| op | kind | what | calls/run | ms/run | % | GFLOP/s |",
    "|---|---|---|---|---|---|---|",
  ]
  for o in ops[:top]:
    lines.append(
      f"| {o['op']} | {o['kind']} | {o['what']} | "
      f"{o['calls_per_run']:g} | {o['ms_per_run']:,.1f} | "
      f"{100 * o['ms_per_run'] / total:.1f} % | "
      f"{_rate(o['gflop_per_run'], o['ms_per_run'])} |"
    )
  return "\n".join(lines)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workload", default="train_step_pixel_loss")
  p.add_argument("--runs", type=int, default=3, help="traced executions")
  p.add_argument("--top", type=int, default=30)
  p.add_argument("--trace_dir", help="default: a new temporary folder")
  p.add_argument("--xprof_python", help="interpreter with xprof (fallback)")
  p.add_argument("--json", help="also write the per-op figures here")
  p.add_argument("--no_peak", action="store_true", help="skip the matmul")
  p.add_argument("--from_json", help="print the report of a saved --json")
  args = p.parse_args(argv)
  if args.from_json:
    result = json.loads(pathlib.Path(args.from_json).read_text())
    print(report(result, args.top))
    return 0
  result = profile(args)
  print(report(result, args.top))
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
