"""ClipTransform's iPOKE-style options: multi-poke maps and zero pokes."""

import ml_collections
import numpy as np
import pytest
from scipy import ndimage

from ii2v_jax.data import pipeline

S = 32


def example(seed=0):
  """A clip whose right half moves (flow (3, -2)) and left half is still."""
  rng = np.random.default_rng(seed)
  video = rng.integers(0, 255, (11, S, S, 3), dtype=np.uint8)
  flow = np.zeros((S, S, 2), np.float32)
  flow[:, S // 2 :] = (3.0, -2.0)
  flow += rng.normal(0, 0.05, flow.shape).astype(np.float32)
  return {"video": video, "flow": flow}


def patches(poke_hw2):
  """Number of connected non-zero regions of a poke map."""
  _, n = ndimage.label(np.abs(poke_hw2).sum(-1) > 0)
  return n


def test_single_poke_is_the_default():
  out = pipeline.ClipTransform()(example(), np.random.default_rng(0))
  assert patches(out["poke"]) == 1
  row, col = out["poke_rc"]
  assert col >= S // 2 - 1  # On the moving half.


def test_multi_poke_writes_up_to_n_patches_with_the_local_flow():
  ex = example()
  counts = []
  for seed in range(30):
    out = pipeline.ClipTransform(max_pokes=3)(ex, np.random.default_rng(seed))
    counts.append(patches(out["poke"]))
    ys, xs = np.nonzero(np.abs(out["poke"]).sum(-1))
    # Every poked pixel holds the flow vector of some moving pixel.
    np.testing.assert_allclose(
      out["poke"][ys, xs], [[3.0, -2.0]] * len(ys), atol=0.3
    )
  assert max(counts) > 1  # Overlapping patches may merge, so not always n.
  assert max(counts) <= 3


def test_zero_poke_gives_a_static_clip_and_a_background_poke():
  ex = example()
  out = pipeline.ClipTransform(zero_poke_fraction=1.0)(
    ex, np.random.default_rng(1)
  )
  video = out["video"]
  assert (video == video[:1]).all()
  np.testing.assert_array_equal(video[0], ex["video"][0])
  row, col = out["poke_rc"]
  assert col < S // 2  # The poke sits on the still half...
  assert np.hypot(*out["poke_uv"]) > 3.0  # ...with a real motion vector.


def test_zero_poke_fraction_is_a_fraction():
  ex = example()
  static = [
    (o["video"] == o["video"][:1]).all()
    for o in (
      pipeline.ClipTransform(zero_poke_fraction=0.25)(
        ex, np.random.default_rng(s)
      )
      for s in range(200)
    )
  ]
  assert 0.15 < np.mean(static) < 0.35


@pytest.mark.parametrize("train", [True, False])
def test_options_apply_to_the_train_split_only(train):
  cfg = ml_collections.ConfigDict(
    dict(
      poke_size=3,
      filter_flow=False,
      augment=False,
      p_color=0.8,
      p_geom=0.8,
      rotate_flow_vectors=False,
      symmetric_hue=False,
      max_pokes=5,
      zero_poke_fraction=0.5,
    )
  )
  t = pipeline.transform_from_config(cfg, train=train)
  assert (t.max_pokes, t.zero_poke_fraction) == (
    (5, 0.5) if train else (1, 0.0)
  )


def _iterator(cfg, local_batch, index, count):
  """Process `index` of `count`'s training iterator, seed 7."""
  it, _ = pipeline.train_iterator(
    cfg,
    local_batch=local_batch,
    seed=7,
    process_index=index,
    process_count=count,
  )
  return it


def test_per_process_batches_stitch_into_the_single_process_batch(
  tiny_config,
):
  """Two processes feed halves of the same global batches: the order does
  not depend on the process count (multi-host runs match one host)."""
  cfg = tiny_config.data
  cfg.num_workers = 0

  def batches(local_batch, index, count, n=3):
    it = _iterator(cfg, local_batch, index, count)
    return [next(it) for _ in range(n)]

  whole = batches(8, 0, 1)
  halves = [batches(4, i, 2) for i in range(2)]
  for k in range(3):
    for key in ("video", "poke"):
      stitched = np.concatenate([halves[0][k][key], halves[1][k][key]])
      np.testing.assert_array_equal(stitched, whole[k][key])
  # A process's iterator state at a step is the same on every process.
  it0, it1 = (_iterator(cfg, 4, i, 2) for i in range(2))
  next(it0), next(it1)
  assert it0.get_state() == it1.get_state()


def test_a_data_position_carries_over_to_another_process_count(tiny_config):
  """A position saved by 2 processes (or bare, as older checkpoints hold
  it) puts 1 process at the next global batch."""
  from ii2v_jax.training import train

  cfg = tiny_config.data
  cfg.num_workers = 0

  halves = [_iterator(cfg, 4, i, 2) for i in range(2)]
  for _ in range(2):
    for it in halves:
      next(it)
  bare = halves[0].get_state()
  saved = {"iterator": bare, "process_count": 2, "local_batch": 4}
  expected = np.concatenate([next(it)["video"] for it in halves])
  one = _iterator(cfg, 8, 0, 1)
  note = train.resume_input(one, saved)
  assert note.startswith("checkpoint written by 2 processes, resumed by 1")
  np.testing.assert_array_equal(next(one)["video"], expected)
  old = _iterator(cfg, 8, 0, 1)
  assert train.resume_input(old, bare) is None
  np.testing.assert_array_equal(next(old)["video"], expected)
