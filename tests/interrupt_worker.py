"""A tiny training run that signals itself where a plan says (for
test_interrupt.py).

  python tests/interrupt_worker.py DATA_DIR NAME WORKDIR NUM_STEPS PLAN_JSON

PLAN_JSON is a list of rounds, one event each: [kind, signal name, k,
delay_s]. A round calls `train.train_and_evaluate` (resuming from the
workdir) and sends the signal at its event:
  "step"      at the k-th batch of the round (after the iterator moved on),
              `delay_s` later from a timer thread;
  "save"      at the k-th checkpoint save, `delay_s` after orbax starts;
  "finalize"  from orbax's background finalize thread of the k-th save;
  "double"    two of them 0.3 s apart in that thread (exits at once);
  "startup"   `delay_s` after the round starts (restore, compile, ...).
Rounds that end in `Interrupted` print a line and the next round resumes
in this process; the last one exits with its status (130 or 143).
"""

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import orbax.checkpoint as ocp  # noqa: E402

from configs import tiny  # noqa: E402
from ii2v_jax.training import train  # noqa: E402


def config(data_dir, name, num_steps):
  c = tiny.get_config()
  c.data.data_dir, c.data.name = data_dir, name
  c.mesh.data, c.train.batch_size = 1, 2
  c.train.num_steps = num_steps
  c.train.checkpoint_every = 2
  c.train.keep_checkpoints = 2
  c.train.sample_every = 0
  c.gan.enabled = False  # Smaller state, faster rounds.
  return c


class Hooks:
  """Counts batches and saves of one round and fires its event."""

  def __init__(self):
    self.event, self.counts = None, {}
    real_to_global = train.sharding.to_global
    real_save = train.checkpoint.save
    real_finalize = ocp.CheckpointManager._finalize

    def to_global(batch, mesh):
      self._at("step")
      return real_to_global(batch, mesh)

    def save(*args, **kwargs):
      self._at("save")
      return real_save(*args, **kwargs)

    def finalize(mngr, *args, **kwargs):
      self._at("finalize")
      self._at("double")
      return real_finalize(mngr, *args, **kwargs)

    train.sharding.to_global = to_global
    train.checkpoint.save = save
    ocp.CheckpointManager._finalize = finalize

  def start_round(self, event):
    self.event, self.counts = event, {}
    if event is not None and event[0] == "startup":
      self._send_later(event[1], event[3])

  def _send_later(self, name, delay):
    sig = getattr(signal, name)
    threading.Timer(delay, os.kill, (os.getpid(), sig)).start()

  def _at(self, kind):
    if self.event is None:
      return
    self.counts[kind] = self.counts.get(kind, 0) + 1
    ev_kind, name, k, delay = self.event
    if ev_kind != kind or self.counts[kind] != k:
      return
    if kind == "double":
      os.kill(os.getpid(), getattr(signal, name))
      time.sleep(0.3)
      os.kill(os.getpid(), getattr(signal, name))
      time.sleep(30)  # The second signal ends the process before this.
    elif kind == "finalize":
      os.kill(os.getpid(), getattr(signal, name))
    else:
      self._send_later(name, delay)


def main(argv):
  data_dir, name, workdir, num_steps, plan = argv
  c = config(data_dir, name, int(num_steps))
  hooks = Hooks()
  rounds = json.loads(plan)
  for i, event in enumerate(rounds):
    hooks.start_round(event)
    try:
      train.train_and_evaluate(c, workdir)
    except train.Interrupted as e:
      print(f"round {i}: interrupted at step {e.step} ({e.code})", flush=True)
      if i == len(rounds) - 1:
        raise
      continue
    print(f"round {i}: finished", flush=True)
    return 0
  hooks.start_round(None)
  train.train_and_evaluate(c, workdir)
  print("finished", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
