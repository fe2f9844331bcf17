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
