"""Damaged checkpoints: sample, evaluate and training fall back to the newest
intact step with a warning naming the damaged one, or stop with one line."""

import json
import logging
import pathlib
import shutil

import jax
import numpy as np
import pytest

from configs import tiny
from ii2v_jax import sample
from ii2v_jax.evaluate import protocol
from ii2v_jax.io import checkpoint, integrity
from ii2v_jax.models import build
from ii2v_jax.training import train


@pytest.fixture(scope="module")
def two_steps(tiny_workdir, tiny_data, tmp_path_factory):
  """A tiny run with checkpoints at steps 2 and 3; (workdir, config)."""
  workdir = tmp_path_factory.mktemp("two_steps") / "run"
  shutil.copytree(tiny_workdir, workdir)
  c = tiny.get_config()
  c.data.data_dir, c.data.name = tiny_data
  c.train.num_steps, c.train.checkpoint_every = 3, 1
  train.train_and_evaluate(c, str(workdir))
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == [
    "2",
    "3",
  ]
  return workdir, c


def _data_files(step: pathlib.Path) -> list[pathlib.Path]:
  files = [p for p in (step / "state").rglob("*") if p.parent.name == "d"]
  return sorted(files, key=lambda p: (-p.stat().st_size, p.name))


# Every array file is damaged: which file holds the generator's params
# (all that sampling reads) is up to orbax.
def truncated(step):
  for f in _data_files(step):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def overwritten(step):
  rng = np.random.default_rng(0)
  for f in _data_files(step):
    data = bytearray(f.read_bytes())
    n, mid = min(4096, len(data) // 4), len(data) // 2
    data[mid : mid + n] = rng.bytes(n)
    f.write_bytes(bytes(data))


def arrays_of_another_step(step):
  """Readable arrays that are not the ones saved: only checksums see it."""
  shutil.rmtree(step / "state")
  shutil.copytree(step.parent / "2" / "state", step / "state")


def garbled_metadata(step):
  (step / "state" / "_METADATA").write_text('{"tree_metadata": [garbage')


def missing_metadata(step):
  (step / "state" / "_METADATA").unlink()


def garbled_step_metadata(step):
  """orbax's own record of the step (its items, when it was committed)."""
  (step / "_CHECKPOINT_METADATA").write_text('{"item_handlers": [garbage')


def missing_step_metadata(step):
  (step / "_CHECKPOINT_METADATA").unlink()


def missing_state(step):
  shutil.rmtree(step / "state")


def empty_folder(step):
  shutil.rmtree(step)
  step.mkdir()


DAMAGE = [
  truncated,
  overwritten,
  arrays_of_another_step,
  garbled_metadata,
  missing_metadata,
  garbled_step_metadata,
  missing_step_metadata,
  missing_state,
  empty_folder,
]


def _damaged_copy(two_steps, tmp_path, damage, steps=(3,)):
  workdir = tmp_path / "run"
  shutil.copytree(two_steps[0], workdir)
  for s in steps:
    damage(workdir / "checkpoints" / str(s))
  return workdir


def _params(workdir, step=None):
  cfg = checkpoint.read_config(workdir)
  _, abstract = build.abstract_generator(cfg)
  return checkpoint.restore_params(workdir, abstract, step=step)


def _warned(caplog, text) -> list[str]:
  return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_a_damaged_step_is_skipped_everywhere(
  two_steps, tmp_path, damage, caplog
):
  caplog.set_level(logging.WARNING, logger="ii2v_jax.io.checkpoint")
  intact = {s: _params(two_steps[0], s)[0] for s in (2, 3)}
  workdir = _damaged_copy(two_steps, tmp_path, damage)
  mp4 = tmp_path / "poke.mp4"
  argv = ["--workdir", str(workdir), "--poke", "20,20,4,0", "--out", str(mp4)]
  assert sample.main(argv + ["--num_frames", "2"]) == 0
  assert mp4.stat().st_size > 0
  assert checkpoint.load_model(str(workdir))[3] == 2
  checkpoint.load_model.cache_clear()  # Evaluate restores it again.
  argv = ["--workdir", str(workdir), "--num_clips", "2", "--metrics", "ssim"]
  assert protocol.main(argv) == 0
  assert json.loads((workdir / "eval.json").read_text())["step"] == 2
  warned = _warned(caplog, "checkpoint step 3 in")
  assert len(warned) == 2 and all("is damaged" in w for w in warned)
  assert (workdir / "checkpoints" / "3").exists()  # Readers change nothing.

  # Training resumes from step 2, sets step 3 aside and redoes it exactly.
  c = two_steps[1].copy_and_resolve_references()
  train.train_and_evaluate(c, str(workdir))
  assert (workdir / "checkpoints_damaged" / "3").is_dir()
  params, step = _params(workdir)
  assert step == 3
  jax.tree.map(np.testing.assert_array_equal, params, intact[3])


@pytest.mark.parametrize(
  "damage",
  [truncated, empty_folder, missing_step_metadata],
  ids=lambda f: f.__name__,
)
def test_no_intact_step_stops_with_one_line(
  two_steps, tmp_path, damage, capsys
):
  workdir = _damaged_copy(two_steps, tmp_path, damage, steps=(2, 3))
  before = sorted(str(p) for p in workdir.rglob("*"))
  argv = ["--workdir", str(workdir), "--poke", "20,20,4,0"]
  assert sample.main(argv + ["--out", str(tmp_path / "x.mp4")]) == 2
  assert protocol.main(["--workdir", str(workdir), "--num_clips", "2"]) == 2
  for err in capsys.readouterr().err.strip().splitlines():
    assert err.startswith("error: no intact checkpoint in "), err
    assert "(damaged: 3, 2)" in err
  with pytest.raises(checkpoint.CheckpointError, match="no intact"):
    train.train_and_evaluate(two_steps[1], str(workdir))
  assert sorted(str(p) for p in workdir.rglob("*")) == before


def test_checkpoints_without_checksums_still_load(two_steps, tmp_path, caplog):
  """Steps saved before checksums existed: they load, with one warning."""
  caplog.set_level(logging.WARNING, logger="ii2v_jax.io.checkpoint")
  workdir = tmp_path / "run"
  shutil.copytree(two_steps[0], workdir)
  for step in (workdir / "checkpoints").iterdir():
    shutil.rmtree(step / integrity.ITEM)
    meta_path = step / "_CHECKPOINT_METADATA"
    meta = json.loads(meta_path.read_text())
    del meta["item_handlers"][integrity.ITEM]
    meta_path.write_text(json.dumps(meta))
  want = _params(two_steps[0])
  got = _params(workdir)
  assert got[1] == want[1] == 3
  jax.tree.map(np.testing.assert_array_equal, got[0], want[0])
  _params(workdir, 2)
  warned = _warned(caplog, "cannot be verified")
  assert len(warned) == 1 and "saved without checksums" in warned[0]


def test_a_step_that_lost_its_checksums_is_damaged(two_steps, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(two_steps[0], workdir)
  shutil.rmtree(workdir / "checkpoints" / "3" / integrity.ITEM)
  assert _params(workdir)[1] == 2


def test_checksums_name_the_array_that_differs():
  tree = {"a": np.arange(4, dtype=np.float32), "b": {"c": np.int32(3)}}
  table = json.loads(json.dumps(integrity.checksums(tree)))
  assert integrity.mismatches(table, tree) == []
  tree["a"][2] = 7
  assert integrity.mismatches(table, tree) == [
    "['a'] differs from what was saved"
  ]
  assert integrity.mismatches(table, {"x": np.zeros(1)}) == [
    "['x'] has no checksum"
  ]
