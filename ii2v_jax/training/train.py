"""Training loop: sharded jitted steps, checkpoints, logs, resumption.

`train_and_evaluate(config, workdir)` always resumes from the newest
checkpoint in `workdir`, including the data-iterator position, so an
interrupted run continues exactly where it stopped.
"""

import functools
import os
import signal
import sys
import threading
import time

import jax
import numpy as np
import tqdm

from ii2v_jax.data import pipeline
from ii2v_jax.evaluate import batch_metrics
from ii2v_jax.io import checkpoint
from ii2v_jax.models import build, inference
from ii2v_jax.parallel import sharding
from ii2v_jax.pretrained import perceptual
from ii2v_jax.training import gan_step, optim, train_step, writer
from ii2v_jax.training import state as state_lib


def compile_step(
  config,
  mesh,
  optimizers,
  schedules,
  graphdef,
  disc_graphdefs=None,
  *,
  gan_active: bool = False,
  state_shardings=None,
):
  """The jitted step with explicit shardings; the state is donated.

  With discriminators there are two programs: before the GAN start (D
  state passed through) and after it (`gan_active`). The state is
  replicated unless `state_shardings` (FSDP) says otherwise.
  """
  rep, bat = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  st = rep if state_shardings is None else state_shardings
  gan = None
  if disc_graphdefs is not None:
    gan = gan_step.settings_from_config(
      config, disc_graphdefs["patch"], disc_graphdefs["temporal"]
    )
  fn = functools.partial(
    train_step.train_step,
    graphdef=graphdef,
    optimizers=optimizers,
    schedules=schedules,
    s=train_step.settings_from_config(config),
    gan=gan,
    gan_active=gan_active,
  )
  return jax.jit(
    fn,
    in_shardings=(st, bat, rep),
    out_shardings=(st, rep),
    donate_argnums=(0,),
  )


class StepFunctions:
  """Picks (and compiles on first use) the program for each iteration."""

  def __init__(
    self, config, mesh, optimizers, schedules, graphdef, discs, shardings
  ):
    self._args = (config, mesh, optimizers, schedules, graphdef, discs)
    self._shardings = shardings
    self._start = config.gan.start_iteration if discs is not None else None
    self._compiled = {}

  def __call__(self, step: int):
    active = self._start is not None and step + 1 >= self._start
    if active not in self._compiled:
      self._compiled[active] = compile_step(
        *self._args, gan_active=active, state_shardings=self._shardings
      )
    return self._compiled[active]


def initial_state(optimizers, abstract, shardings, mngr, config):
  """(state, data_state): restored from the workdir, or freshly built."""
  target = jax.tree.map(
    lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
    abstract,
    shardings,
  )
  restored = checkpoint.restore_latest(mngr, target)
  if restored is not None:
    return restored
  params = build.initial_params(config)
  disc_state = build.initial_disc_state(config)
  init = jax.jit(
    lambda p, d: state_lib.init_state(p, optimizers, d),
    out_shardings=shardings,
  )
  return init(params, disc_state), None


def data_position(it, local_batch: int) -> dict:
  """The input position a checkpoint stores, with who wrote it."""
  return {
    "iterator": it.get_state(),
    "process_count": jax.process_count(),
    "local_batch": local_batch,
  }


def resume_input(it, saved: dict) -> str | None:
  """Sets the iterator to a checkpoint's position; a note if the process
  count changed.

  The iterator counts global batches (every process reads the same global
  clip order, `pipeline.HostRows`), so its state is the same in any process
  count: the position carries over as it is. Checkpoints saved before the
  process count was stored hold the bare iterator state.
  """
  if "iterator" not in saved:
    it.set_state(saved)
    return None
  it.set_state(saved["iterator"])
  was, now = saved["process_count"], jax.process_count()
  if was == now:
    return None
  return (
    f"checkpoint written by {was} processes, resumed by {now}: the data "
    "position counts global batches, so it carries over"
  )


def whole(params, mesh):
  """Params replicated for previews and quick metrics (FSDP splits them)."""
  if mesh.shape.get("fsdp", 1) == 1:
    return params
  return jax.device_put(params, sharding.replicated(mesh))


class Interrupted(SystemExit):
  """Training stopped on SIGINT/SIGTERM after saving a consistent step.

  A SystemExit with status 128 + signal number (130 for Ctrl-C, 143 for
  SIGTERM), so an entry point that does not catch it exits with that status
  and no traceback.
  """

  def __init__(self, signum: int, step: int):
    super().__init__(128 + signum)
    self.signum, self.step = signum, step


class StopFlag:
  """SIGINT/SIGTERM handlers that only record the request.

  The loop looks at `signum` at step boundaries, so what it saves is always
  a whole step. A second signal exits at once (status 128 + signum) without
  touching the checkpoints on disk: an unfinished save stays a temporary
  folder that orbax ignores.
  """

  SIGNALS = (signal.SIGINT, signal.SIGTERM)

  def __init__(self):
    self.signum = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    name = signal.Signals(signum).name
    if self.signum is not None:
      os.write(2, f"\n{name} again: exiting now\n".encode())
      os._exit(128 + signum)
    self.signum = signum
    os.write(
      2,
      f"\n{name}: stopping after this step to save it (Ctrl-C again "
      "exits at once, keeping the last complete checkpoint)\n".encode(),
    )

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous = {}

  def requested(self) -> bool:
    """Whether any process got a signal (all processes agree)."""
    mine = self.signum is not None
    if jax.process_count() == 1:
      return mine
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.int32(mine))
    if np.any(flags) and self.signum is None:
      self.signum = signal.SIGTERM  # Another host was told to stop.
    return bool(np.any(flags))


def preview_batch(config):
  """A fixed batch of test clips with seeded pokes for sample videos."""
  n, load = pipeline.eval_examples(
    config.data, num_clips=4, seed=config.eval.seed
  )
  return pipeline.stack([load(i) for i in range(n)])


def log_preview(log, step, rollout, params, batch):
  x = inference.to_unit_range(batch["video"])
  video = np.asarray(
    inference.to_uint8(rollout(params, x[:, 0], batch["poke"]))
  )
  log.video_grid(step, "samples/generated", batch["video"][:, :1], video)
  log.video_grid(
    step, "samples/ground_truth", batch["video"][:, :1], batch["video"][:, 1:]
  )


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains until `config.train.num_steps`; returns the last metrics.

  SIGINT/SIGTERM stop the run at the next step boundary: that step is saved
  (parameters, optimizer state, data-iterator position and step agree) and
  `Interrupted` is raised; rerunning resumes exactly.
  """
  with StopFlag() as stop:
    metrics, step = _train(config, workdir, stop)
  if stop.signum is not None:
    line = (
      f"interrupted at step {step}: saved, rerun the same command to resume"
      if step
      else "interrupted before the first step: nothing to save, rerun the "
      "same command to start"
    )
    print(line, file=sys.stderr, flush=True)
    raise Interrupted(stop.signum, step)
  return metrics


def _train(config, workdir: str, stop: StopFlag) -> tuple[dict, int]:
  """The loop of `train_and_evaluate`: (last metrics, last step)."""
  changed = checkpoint.config_changes(workdir, config)
  mesh = sharding.make_mesh(config.mesh.data, num_fsdp=config.mesh.fsdp)
  local_batch = sharding.check_batch_size(config.train.batch_size, mesh)
  it, n_train = pipeline.train_iterator(
    config.data, local_batch=local_batch, seed=config.seed
  )
  steps_per_epoch = max(1, n_train // config.train.batch_size)
  optimizers, schedules = optim.make_optimizers(
    config.optim, steps_per_epoch, config.gan
  )
  graphdef, discs, abstract = state_lib.abstract_state(config, optimizers)
  vgg = jax.device_put(
    perceptual.params_from_config(config.loss), sharding.replicated(mesh)
  )
  state_sh = sharding.state_shardings(abstract, mesh)
  step_fns = StepFunctions(
    config, mesh, optimizers, schedules, graphdef, discs, state_sh
  )
  mngr = checkpoint.manager(workdir, max_to_keep=config.train.keep_checkpoints)
  state, data_state = initial_state(
    optimizers, abstract, state_sh, mngr, config
  )
  moved = None
  if data_state is not None:
    moved = resume_input(it, data_state)
  start = int(state["step"])
  log = writer.Writer(workdir)
  if jax.process_index() == 0:
    checkpoint.write_config(workdir, config)
  log.text(0, "config", str(config))
  if changed:
    log.summary(f"resuming with changed config keys: {', '.join(changed)}")
  if moved:
    log.summary(moved)
  log.summary(
    f"params: {build.count_params(state['params']):,}  "
    f"train clips: {n_train:,}  steps/epoch: {steps_per_epoch}  "
    f"devices: {sharding.batch_devices(mesh)}  resume from step {start}"
  )
  rollout = inference.make_rollout_fn(graphdef, config.data.num_frames)
  preview = preview_batch(config) if config.train.sample_every else None
  quick_eval = batch_metrics.make_periodic_eval(config, graphdef, mesh)
  t = config.train
  metrics, step, saved = {}, start, start
  bar = tqdm.tqdm(
    total=t.num_steps,
    initial=start,
    unit="step",
    dynamic_ncols=True,
    disable=not t.progress_bar or jax.process_index() != 0,
  )
  tick, clips = time.perf_counter(), 0
  try:
    # A signal during start-up stops before the first step.
    while step < t.num_steps and not stop.requested():
      batch = sharding.to_global(next(it), mesh)
      state, metrics = step_fns(step)(state, batch, vgg)
      # Waiting here keeps the bar honest; input prefetch still overlaps.
      metrics["loss_dyn"].block_until_ready()
      step += 1
      clips += t.batch_size
      bar.update(1)
      if step % t.log_every == 0 or step == t.num_steps:
        metrics = jax.device_get(metrics)
        rate = clips / (time.perf_counter() - tick)
        tick, clips = time.perf_counter(), 0
        metrics["clips_per_second"] = rate
        log.scalars(step, metrics)
        bar.set_postfix(
          loss=f"{metrics['loss_dyn']:.3f}", clips_s=f"{rate:.1f}"
        )
      if preview is not None and step % t.sample_every == 0:
        log_preview(log, step, rollout, whole(state["params"], mesh), preview)
      if quick_eval is not None and step % config.eval.every == 0:
        log.scalars(step, quick_eval(whole(state["params"], mesh)))
      if step % t.checkpoint_every == 0 or step == t.num_steps:
        checkpoint.save(mngr, step, state, data_position(it, local_batch))
        saved = step
    if stop.signum is not None and step > saved:
      log.summary(f"interrupted: saving step {step} before exiting")
      checkpoint.save(mngr, step, state, data_position(it, local_batch))
  finally:
    bar.close()
    mngr.wait_until_finished()
    log.close()
  return jax.device_get(metrics), step
