"""Input pipeline: grain over a prepared TFDS dataset (no TensorFlow).

A dataset is read from `<data_dir>/<name>/<version>` with
`tfds.builder_from_directory`, so training needs no builder code, only the
shared feature spec (`video`, `flow`, `fg_mask`, ...). Each example becomes
`{"video": uint8 (T+1,S,S,3), "poke": float32 (S,S,2)}` plus, for
evaluation, the poke location and vector.
"""

import contextlib
import dataclasses
import pathlib
import signal
from multiprocessing import resource_tracker

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds

from ii2v_jax.data import augment, flow_targets, poke

# Optional ground-truth tracks some datasets store: (T+1, J, 2) pixel
# (x, y) joint positions, padded, and how many are real.
TRACK_FEATURES = ("joints", "num_joints")


class DataError(RuntimeError):
  """A dataset is missing or does not match the config."""


def dataset_dir(data_dir: str, name: str) -> pathlib.Path:
  """Newest prepared version folder of `name` ('builder/config')."""
  root = pathlib.Path(data_dir) / name
  versions = sorted(
    (p for p in root.glob("*.*.*") if (p / "dataset_info.json").exists()),
    key=lambda p: tuple(int(v) for v in p.name.split(".")),
  )
  if not versions:
    raise DataError(
      f"no prepared dataset '{name}' under {data_dir}; build it first "
      "(for the synthetic set: make data)"
    )
  return versions[-1]


def open_split(data_dir: str, name: str, split: str):
  """Random-access source of one split of a prepared dataset."""
  builder = tfds.builder_from_directory(str(dataset_dir(data_dir, name)))
  sources = builder.as_data_source()
  if split not in sources:
    raise DataError(f"dataset '{name}' has no split '{split}'")
  return sources[split]


@dataclasses.dataclass(frozen=True)
class ClipTransform:
  """Turns a stored example into a training or evaluation example."""

  poke_size: int = 3
  filter_flow: bool = False
  augment: bool = False
  p_color: float = 0.8
  p_geom: float = 0.8
  rotate_flow_vectors: bool = False
  symmetric_hue: bool = False
  max_pokes: int = 1
  zero_poke_fraction: float = 0.0
  flow_targets: bool = False

  def __call__(self, example: dict, rng: np.random.Generator) -> dict:
    video, flow = example["video"], example["flow"]
    mask = example.get("fg_mask")
    if self.augment:
      video, flow, mask = augment.augment_clip(
        video,
        flow,
        rng,
        p_color=self.p_color,
        p_geom=self.p_geom,
        rotate_flow_vectors=self.rotate_flow_vectors,
        symmetric_hue=self.symmetric_hue,
        fg_mask_hw=mask,
      )
    fg = mask if self.filter_flow else None
    picked = None
    if self.zero_poke_fraction and rng.random() < self.zero_poke_fraction:
      picked = poke.zero_poke(
        flow, rng, poke_size=self.poke_size, fg_mask_hw=fg
      )
      if picked is not None:  # A static clip: x0 repeated.
        video = np.broadcast_to(video[:1], video.shape)
    if picked is None:
      picked = self._motion_pokes(flow, fg, rng)
    size = video.shape[1]
    if picked is None:  # Motionless flow: a zero poke (static target).
      picked = (
        np.zeros((size, size, 2), np.float32),
        (size // 2,) * 2 + (0, 0),
      )
    poke_map, (row, col, u, v) = picked
    out = {
      "video": np.ascontiguousarray(video, np.uint8),
      "poke": poke_map.astype(np.float32),
      "poke_rc": np.asarray([row, col], np.int32),
      "poke_uv": np.asarray([u, v], np.float32),
    }
    if self.flow_targets:
      out["flow_targets"] = flow_targets.backward_flows(out["video"])
    return out

  def _motion_pokes(self, flow, fg, rng):
    """One poke (the reference), or 1..max_pokes in one map (iPOKE)."""
    kw = dict(poke_size=self.poke_size, fg_mask_hw=fg)
    first = poke.sample_poke(flow, rng, **kw)
    if first is None or self.max_pokes <= 1:
      return first
    pokes = [first[1]]
    for _ in range(int(rng.integers(1, self.max_pokes + 1)) - 1):
      loc = poke.sample_poke_location(flow, rng, **kw)
      if loc is not None:
        pokes.append((*loc, *(float(x) for x in flow[loc])))
    size = flow.shape[0]
    return poke.make_poke_map(size, pokes, poke_size=self.poke_size), first[1]


def transform_from_config(data_cfg, *, train: bool) -> ClipTransform:
  return ClipTransform(
    poke_size=data_cfg.poke_size,
    filter_flow=data_cfg.filter_flow,
    augment=train and data_cfg.augment,
    p_color=data_cfg.p_color,
    p_geom=data_cfg.p_geom,
    rotate_flow_vectors=data_cfg.rotate_flow_vectors,
    symmetric_hue=data_cfg.symmetric_hue,
    max_pokes=data_cfg.max_pokes if train else 1,
    zero_poke_fraction=data_cfg.zero_poke_fraction if train else 0.0,
    flow_targets=train and data_cfg.get("flow_targets", False),
  )


def check_source(source, data_cfg) -> None:
  """Fails early when stored clips do not match the config."""
  video = source[0]["video"]
  want = (data_cfg.num_frames + 1, data_cfg.resolution, data_cfg.resolution, 3)
  if video.shape != want:
    raise DataError(
      f"stored clips have shape {video.shape}, config expects {want} "
      "(data.num_frames + 1, data.resolution, data.resolution, 3)"
    )


class HostRows(grain.MapDataset):
  """The rows of each global batch that one process feeds, in order.

  Every process reads the same seeded global clip order and keeps its
  `local_batch` rows of each `global_batch`, so the global batch does not
  depend on how many processes assemble it.
  """

  def __init__(self, parent, *, global_batch: int, local_batch: int, index):
    super().__init__(parent)
    self._global, self._local = global_batch, local_batch
    self._offset = index * local_batch

  def __len__(self) -> int:
    return len(self._parent) // self._global * self._local

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    batch, row = divmod(index, self._local)
    return self._parent[batch * self._global + self._offset + row]


# A terminal's Ctrl-C reaches the whole process group, but only the main
# process decides how to stop (it saves a whole step and stops the workers).
def _ignore_sigint(worker_index: int, worker_count: int) -> None:
  """grain's worker_init_fn: each worker ignores SIGINT."""
  del worker_index, worker_count
  signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _sigint_blocked():
  old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
  try:
    yield
  finally:
    signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _WorkerBatches:
  """The grain iterator, called with SIGINT blocked in this thread.

  Threads and worker processes that grain starts in a call inherit the
  blocked signal, so a Ctrl-C during a worker's seconds of start-up (before
  its worker_init_fn) does not kill it. This process still gets it: the
  kernel hands it to another thread, or to this one after the call.
  """

  def __init__(self, dataset):
    # Starting the resource tracker unblocks SIGINT in the thread that
    # starts it (CPython's resource_tracker): start it here, first.
    resource_tracker.ensure_running()
    with _sigint_blocked():
      self._it = iter(dataset)

  def __iter__(self):
    return self

  def __next__(self):
    with _sigint_blocked():
      return next(self._it)

  def get_state(self):
    return self._it.get_state()

  def set_state(self, state) -> None:
    with _sigint_blocked():
      self._it.set_state(state)

  def close(self) -> None:
    self._it.close()


def _own_memory(batch: dict) -> dict:
  """A copy out of the workers' shared memory. On CPU, jax arrays made from
  it keep the blocks alive past shutdown, and Python's resource tracker
  then warns of 'leaked shared_memory objects' at every exit."""
  return jax.tree.map(np.array, batch)


def train_iterator(
  data_cfg,
  *,
  local_batch: int,
  seed: int,
  process_index: int | None = None,
  process_count: int | None = None,
):
  """Endless, shuffled, augmented, checkpointable batch iterator.

  Returns the grain iterator (it has `get_state`/`set_state`) and the
  number of clips in the split. The iterator state is the same on every
  process at a given step.
  """
  if process_index is None:
    process_index, process_count = jax.process_index(), jax.process_count()
  source = open_split(data_cfg.data_dir, data_cfg.name, data_cfg.train_split)
  check_source(source, data_cfg)
  if len(source) < local_batch:
    raise DataError(
      f"train split has {len(source)} clips, fewer than a batch ({local_batch})"
    )
  ds = grain.MapDataset.source(source)
  ds = ds.shuffle(seed=seed).repeat(reseed_each_epoch=True)
  ds = ds.random_map(transform_from_config(data_cfg, train=True), seed=seed)
  ds = HostRows(
    ds,
    global_batch=local_batch * process_count,
    local_batch=local_batch,
    index=process_index,
  )
  ds = ds.batch(local_batch, drop_remainder=True)
  read = grain.ReadOptions(
    num_threads=data_cfg.num_threads, prefetch_buffer_size=data_cfg.prefetch
  )
  it_ds = ds.to_iter_dataset(read)
  if data_cfg.num_workers > 0:
    it_ds = it_ds.mp_prefetch(
      grain.MultiprocessingOptions(num_workers=data_cfg.num_workers),
      worker_init_fn=_ignore_sigint,
    )
    return _WorkerBatches(it_ds.map(_own_memory)), len(source)
  return iter(it_ds), len(source)


def eval_examples(data_cfg, *, num_clips: int, seed: int, split=None):
  """A fixed, seeded list of test-clip indices and their transform.

  Clip selection and each clip's poke depend only on `seed` and the clip
  index, so every run (and every device count) evaluates the same pokes.
  Examples carry `TRACK_FEATURES` where the dataset stores them.
  """
  split = split or data_cfg.test_split
  source = open_split(data_cfg.data_dir, data_cfg.name, split)
  check_source(source, data_cfg)
  n = min(num_clips, len(source))
  order = np.random.default_rng(seed).permutation(len(source))[:n]
  transform = transform_from_config(data_cfg, train=False)

  def load(i: int) -> dict:
    rng = np.random.default_rng([seed, int(order[i])])
    example = source[int(order[i])]
    out = transform(example, rng)
    out["clip_index"] = np.int32(order[i])
    for key in TRACK_FEATURES:  # Evaluation's joint-tracking error.
      if key in example:
        out[key] = np.asarray(example[key])
    return out

  return n, load


def stack(examples: list[dict]) -> dict:
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}
