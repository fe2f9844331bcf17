"""ii2v-jax: poke a still image, get the video of how the object moves.

Rooms, with imports pointing one way (a room imports only rooms listed below
it here; nothing imports the entry points):

  entry points  sample.py, bench.py, evaluate/__main__, convert/__main__,
                serve/__main__ (and ../launch.py for training)
  serve/        the interactive web app: model held warm, batched queue
  convert/      interop with the original PyTorch checkpoints
  training/     train loop, steps, GAN terms, optimizers, state, logs
  evaluate/     the evaluation protocol, its metrics and report
  io/           files of a workdir: checkpoints, config, videos
  parallel/     device mesh and shardings
  models/       the trainable networks and their jitted rollout
  pretrained/   frozen VGG / LPIPS / I3D networks, safe weight loading
  data/         input pipeline: loading, augmentation, pokes, flow targets

`training/` may use `evaluate/` (periodic quick metrics), never the reverse.
"""

import os as _os

# XLA:CPU's YNNPACK convolutions differentiate slowly (a backward-filter conv
# ran at 34 GFLOP/s against 276 with Eigen's; docs/performance.md), so convs
# go to Eigen and YNNPACK keeps its other fusions. Read when the first backend
# starts, so importing ii2v_jax first is enough; a user's own setting of the
# flag, or II2V_CPU_YNN=1, keeps YNNPACK.
_YNN = "--xla_cpu_experimental_ynn_fusion_type"
if _os.environ.get("II2V_CPU_YNN") != "1" and _YNN not in _os.environ.get(
  "XLA_FLAGS", ""
):
  _flags = _os.environ.get("XLA_FLAGS", "")
  _os.environ["XLA_FLAGS"] = f"{_flags} {_YNN}=-individual_convolution".strip()
