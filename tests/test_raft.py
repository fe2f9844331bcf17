"""Tests of the RAFT port: torchvision parity, conversion, inputs, errors.

The fixtures (tools/check_raft_parity.py fixture) hold torchvision RAFT
outputs for seeded numpy weights, which are regenerated here from the
seed, plus the original RAFT repository's key names and shapes.
"""

import json
import pathlib
import sys

import numpy as np
import pytest

import flow
from flow import raft, raft_convert, raft_weights
from tools.check_raft_parity import seeded_state_dict

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def _fixture(variant: str) -> dict:
  with np.load(FIXTURES / f"raft_{variant}.npz") as z:
    return {k: z[k] for k in z.files}


def _tv_state(fx: dict) -> dict:
  """The torchvision state dict the fixture was recorded with."""
  shapes = json.loads(str(fx["tv_shapes"]))
  return seeded_state_dict(list(fx["tv_keys"]), shapes, int(fx["seed"]))


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory) -> pathlib.Path:
  """Converted RAFT-small weights (the fixture's) as written by the CLI."""
  tmp = tmp_path_factory.mktemp("raft")
  np.savez(tmp / "tv.npz", **_tv_state(_fixture("small")))
  out = tmp / "raft_small.npz"
  args = ["--torch_weights", str(tmp / "tv.npz"), "--out", str(out)]
  assert raft_convert.main(args) == 0
  return out


@pytest.fixture(scope="module")
def small_model(small_npz):
  return raft.load_raft(small_npz)


def test_param_counts_match_torchvision():
  assert raft.count_params(raft.abstract_model("large")) == 5257536
  assert raft.count_params(raft.abstract_model("small")) == 990162


@pytest.mark.parametrize("variant", ["large", "small"])
def test_matches_torchvision_fixture(variant):
  fx = _fixture(variant)
  found, params = raft_convert.convert_state_dict(_tv_state(fx))
  assert found == variant
  model = raft.model_from_params(variant, params)
  fn = raft.make_flow_fn(model, iters=4, all_iters=True)
  flows = np.asarray(fn(fx["frames_a"], fx["frames_b"]))
  assert flows.shape == (4, 1, 128, 128, 2)
  diff = np.abs(flows[-1] - fx["flow"])
  assert diff.mean() < 1e-3 and diff.max() < 1e-2, (diff.mean(), diff.max())
  # Every iteration, not just the last (checks the refinement count).
  np.testing.assert_allclose(flows[:, :, ::8, ::8], fx["flows_sub"], atol=1e-2)
  assert np.abs(fx["flow"]).mean() > 0.5  # the fixture moves


@pytest.mark.parametrize("variant", ["large", "small"])
def test_official_key_mapping(variant):
  fx = _fixture(variant)
  tv = _tv_state(fx)
  official = raft_weights.torchvision_to_official(tv, variant)
  # Names and shapes recorded from princeton-vl/RAFT's own model.
  recorded = [k.removeprefix("module.") for k in fx["official_keys"]]
  shapes = json.loads(str(fx["official_shapes"]))
  assert sorted(official) == sorted(recorded)
  for key, shape in zip(recorded, shapes):
    assert list(official[key].shape) == shape, key
  back = raft_weights.official_to_torchvision(official, variant)
  assert back.keys() == tv.keys()
  # A released checkpoint's layout ('module.' prefix) converts the same.
  ckpt = {f"module.{k}": v for k, v in official.items()}
  found, p_off = raft_convert.convert_state_dict(ckpt)
  _, p_tv = raft_convert.convert_state_dict(tv)
  assert found == variant and p_off.keys() == p_tv.keys()
  assert all(np.array_equal(p_off[k], p_tv[k]) for k in p_tv)


def test_conversion_round_trip(small_npz):
  variant, params = raft_weights.read_npz(small_npz)
  assert variant == "small"
  tv = _tv_state(_fixture("small"))
  back = raft_weights.params_to_torchvision(params)
  assert back.keys() == {k for k in tv if "num_batches" not in k}
  assert all(np.array_equal(back[k], tv[k]) for k in back)
  # Batch-norm statistics (large's context encoder) land in the tree.
  _, large = raft_convert.convert_state_dict(_tv_state(_fixture("large")))
  key = "context_encoder/layer2/0/downsample/norm/var"
  tv_large = _tv_state(_fixture("large"))
  np.testing.assert_array_equal(
    large[key], tv_large["context_encoder.layer2.0.downsample.1.running_var"]
  )


def _tv_small() -> dict:
  return _tv_state(_fixture("small"))


@pytest.mark.parametrize(
  "edit, message",
  [
    (lambda sd: sd.pop("update_block.flow_head.conv2.bias"), "1 missing"),
    (
      lambda sd: sd.update({"update_block.extra.weight": np.zeros(3)}),
      "unexpected",
    ),
    (
      lambda sd: sd.update(
        {"feature_encoder.conv.weight": np.zeros((5, 96, 1, 1), np.float32)}
      ),
      "feature_encoder.conv.weight",
    ),
  ],
)
def test_bad_state_dict_is_named(edit, message):
  sd = _tv_small()
  edit(sd)
  with pytest.raises(raft_weights.ConversionError, match=message):
    raft_convert.convert_state_dict(sd)


def test_bad_files(tmp_path, small_npz, monkeypatch):
  bad = tmp_path / "corrupt.npz"
  bad.write_bytes(b"not a zip file at all")
  with pytest.raises(ValueError, match="not a readable"):
    raft.load_raft(bad)
  with pytest.raises(ValueError, match="not a readable"):
    raft_convert.convert(bad)
  np.savez(tmp_path / "other.npz", foo=np.zeros(3))
  with pytest.raises(ValueError, match="not a RAFT state dict"):
    raft_convert.convert(tmp_path / "other.npz")
  np.savez(tmp_path / "tv.npz", **_tv_small())
  with pytest.raises(ValueError, match="run python -m flow.raft_convert"):
    raft.load_raft(tmp_path / "tv.npz")
  with pytest.raises(ValueError, match="not large"):
    raft.load_raft(small_npz, variant="large")
  with pytest.raises(ValueError, match="not large"):
    raft_convert.convert(tmp_path / "tv.npz", variant="large")
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails
  (tmp_path / "w.pth").write_bytes(b"")
  with pytest.raises(ImportError, match="needs torch"):
    raft_convert.convert(tmp_path / "w.pth")
  assert raft_convert.main(["--torch_weights", str(tmp_path / "w.pth"),
                            "--out", str(tmp_path / "o.npz")]) == 1  # fmt: skip


def _frames(n, h, w, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (2, n, h, w, 3), dtype=np.uint8)


def test_shapes_batching_iterations(small_model):
  a, b = _frames(2, 64, 96)
  fn = raft.make_flow_fn(small_model, iters=3, all_iters=True)
  flows = np.asarray(fn(a, b))
  assert flows.shape == (3, 2, 64, 96, 2) and flows.dtype == np.float32
  last = np.asarray(raft.make_flow_fn(small_model, iters=3)(a, b))
  np.testing.assert_allclose(last, flows[-1], atol=1e-5)
  single = np.asarray(raft.make_flow_fn(small_model, iters=3)(a[1:], b[1:]))
  np.testing.assert_allclose(single[0], last[1], atol=1e-4)
  assert np.abs(flows[0] - flows[1]).max() > 1e-3  # iterations refine


def test_input_types_and_ranges(small_model):
  a, b = _frames(1, 64, 64, seed=1)
  ref = small_model(a, b, iters=1)
  as_float = small_model(a.astype(np.float32), b.astype(np.float32), iters=1)
  unit = small_model(a / 255.0, b / 255.0, iters=1, value_range=(0.0, 1.0))
  np.testing.assert_allclose(as_float, ref, atol=1e-5)
  np.testing.assert_allclose(unit, ref, atol=1e-4)


@pytest.mark.parametrize(
  "shape_a, shape_b, message",
  [
    ((1, 66, 64, 3), (1, 66, 64, 3), "divisible by 8"),
    ((1, 64, 64, 3), (1, 64, 72, 3), "shapes differ"),
    ((1, 64, 64, 4), (1, 64, 64, 4), r"\(N, H, W, 3\)"),
    ((64, 64, 3), (64, 64, 3), r"\(N, H, W, 3\)"),
    ((1, 32, 64, 3), (1, 32, 64, 3), ">= 64"),
  ],
)
def test_bad_inputs(small_model, shape_a, shape_b, message):
  a, b = np.zeros(shape_a, np.uint8), np.zeros(shape_b, np.uint8)
  with pytest.raises(ValueError, match=message):
    small_model(a, b)


def test_bad_iters(small_model):
  a, b = _frames(1, 64, 64)
  with pytest.raises(ValueError, match="iters"):
    small_model(a, b, iters=0)


def test_estimate_flow_raft_pads_and_upscales(small_npz):
  a, b = _frames(3, 44, 70)
  kw = dict(method="raft", weights=small_npz, iters=2)
  # Padded to 64x72, in chunks of 2 pairs.
  out = flow.estimate_flow(a, b, min_size=0, batch_size=2, **kw)
  assert out.shape == (3, 44, 70, 2) and out.dtype == np.float32
  one = flow.estimate_flow(a[2], b[2], min_size=0, **kw)
  np.testing.assert_allclose(one, out[2], atol=1e-4)
  # Upscaled x2 to 88x140, padded to 88x144, flow scaled back.
  up = flow.estimate_flow(a[:1], b[:1], min_size=64, **kw)
  assert up.shape == (1, 44, 70, 2) and np.isfinite(up).all()
  with pytest.raises(ValueError, match="needs weights"):
    flow.estimate_flow(a, b, method="raft")


def test_save_raft_round_trip(small_npz, small_model, tmp_path):
  raft.save_raft(small_model, tmp_path / "saved.npz")
  variant, saved = raft_weights.read_npz(tmp_path / "saved.npz")
  _, original = raft_weights.read_npz(small_npz)
  assert variant == "small" and saved.keys() == original.keys()
  for key, value in original.items():
    np.testing.assert_array_equal(saved[key], value, err_msg=key)
