"""Times one 3x3 stride-1 conv forward, its input gradient and its filter
gradient on this machine, under whatever XLA_FLAGS are set.

  .venv/bin/python tools/bench_conv.py --shape 40,64,128,128
  II2V_CPU_YNN=1 .venv/bin/python tools/bench_conv.py   # YNNPACK convs

--shape is batch,size,in,out (NHWC, SxS). Importing ii2v_jax first applies
its XLA:CPU defaults (convs on Eigen) unless II2V_CPU_YNN=1.
"""

import argparse
import os
import pathlib
import sys

import jax
from jax import lax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
# Sets XLA_FLAGS; read when the backend starts, after this import.
import ii2v_jax  # noqa: E402, F401
from ii2v_jax.bench import timed  # noqa: E402


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--shape", default="40,64,128,128")
  p.add_argument("--repeats", type=int, default=3)
  args = p.parse_args()
  b, s, c, o = (int(v) for v in args.shape.split(","))
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (b, s, s, c))
  w = jax.random.normal(keys[1], (3, 3, c, o)) * 0.05
  g = jax.random.normal(keys[2], (b, s, s, o))

  def conv(x, w):
    return lax.conv_general_dilated(
      x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )

  work = {
    "forward": (jax.jit(conv), x, w),
    "input gradient (dX)": (
      jax.jit(lambda w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0]),
      w,
      g,
    ),
    "filter gradient (dW)": (
      jax.jit(lambda x, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0]),
      x,
      g,
    ),
  }
  flops = 2 * b * s * s * 9 * c * o
  print(
    f"3x3 conv {c}->{o}, {s}x{s}, batch {b}; jax {jax.__version__}; "
    f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
  )
  for name, (fn, *a) in work.items():
    sec = timed(fn, *a, repeats=args.repeats)  # Median after a warm-up.
    print(f"{name:22s} {sec * 1e3:8.1f} ms {flops / sec / 1e9:7.0f} GFLOP/s")


if __name__ == "__main__":
  main()
