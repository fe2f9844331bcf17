"""Tests of the synthetic articulated-pokes dataset: physics, labels, TFDS."""

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

import flow
from datasets import features
from datasets.articulated_pokes import (
  articulated_pokes_dataset_builder as apb,
)
from datasets.articulated_pokes import build, clips, objects, render, simulate

S, T1 = 64, clips.NUM_FRAMES


@pytest.fixture(scope="module")
def clip_list():
  return [clips.make_clip("test", i, resolution=S) for i in range(6)]


def _chain(n: int = 4) -> objects.ArticulatedObject:
  """A straight chain of n equal rods hanging from (0.5, 0.1)."""
  nan = [np.nan, np.nan]
  return objects.ArticulatedObject(
    kind=objects.CHAIN,
    parent=np.arange(-1, n - 1),
    anchor_l2=np.array([[0.5, 0.1]] + [nan] * (n - 1)),
    attach=np.ones(n),
    rest_angle=np.r_[np.pi / 2, np.zeros(n - 1)],
    length=np.full(n, 0.18),
    width=np.full(n, 0.05),
    taper=np.ones(n),
    shape=np.full(n, objects.ROD),
    color_l3=np.full((n, 3), 60, np.uint8),
    omega=np.full(n, 1.5),
    zeta=np.full(n, 0.3),
    fixed_parts=(),
  )


def _tip_tracks(obj, theta_tl) -> np.ndarray:
  """(T, L, 2) positions of every link's tip."""
  return np.stack(
    [
      simulate.point_track(obj, theta_tl, i, [obj.length[i], 0.0])
      for i in range(obj.num_links)
    ],
    axis=1,
  )


def _poke(obj, link, along=0.8, impulse=(1.0, 0.0)):
  point_2 = simulate.point_track(
    obj, np.zeros((1, obj.num_links)), link, [along * obj.length[link], 0]
  )[0]
  velocity = simulate.poke_velocity(obj, link, point_2, np.array(impulse))
  return velocity, simulate.integrate(obj, 0.05 * velocity, T1)


def test_same_seed_same_clip_other_index_other_clip():
  a, b = clips.make_clip("train", 3), clips.make_clip("train", 3)
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  for other in (clips.make_clip("train", 4), clips.make_clip("test", 3)):
    assert not np.array_equal(a["video"], other["video"])


def test_scene_is_resolution_independent():
  for index in (0, 1):
    small = clips.make_clip("test", index, resolution=64, estimate_flow=False)
    large = clips.make_clip("test", index, resolution=128, estimate_flow=False)
    np.testing.assert_array_equal(
      clips.render_frame("test", index, 64, frame=T1 - 1), small["video"][-1]
    )
    np.testing.assert_array_equal(
      clips.render_frame("test", index, 128), large["video"][0]
    )
    np.testing.assert_allclose(
      large["joints"][:, : small["num_joints"]] + 0.5,
      2 * (small["joints"][:, : small["num_joints"]] + 0.5),
      atol=1e-4,
    )


def test_poking_the_tip_swings_the_tip_most():
  obj = _chain()
  velocity, theta_tl = _poke(obj, link=3)
  assert np.all(velocity != 0)  # Every joint on the path reacts...
  assert abs(velocity[3]) > abs(velocity[0])  # ...the tip joint most.
  moved_tl = np.linalg.norm(
    _tip_tracks(obj, theta_tl)[-1] - _tip_tracks(obj, theta_tl)[0], axis=-1
  )
  assert moved_tl[3] > 3 * moved_tl[0]


def test_poking_the_base_link_moves_everything_above_rigidly():
  obj = _chain()
  velocity, theta_tl = _poke(obj, link=0)
  np.testing.assert_array_equal(velocity[1:], 0)
  np.testing.assert_array_equal(theta_tl[:, 1:], 0)
  tips_tl2 = _tip_tracks(obj, theta_tl)
  moved_l = np.linalg.norm(tips_tl2[-1] - tips_tl2[0], axis=-1)
  assert np.all(moved_l > 0.01)
  # Rigid rotation about the fixed anchor: distances to it are kept.
  radius_tl = np.linalg.norm(tips_tl2 - obj.anchor_l2[0], axis=-1)
  np.testing.assert_allclose(radius_tl, radius_tl[:1].repeat(T1, 0))


@pytest.mark.parametrize("index", range(8))
def test_generated_clip_physics(index):
  scene = clips.make_scene("train", index)
  obj, theta_tl = scene.obj, scene.theta_tl
  path = simulate.path_to_base(obj, scene.link)
  off_path = np.setdiff1d(np.arange(obj.num_links), path)
  np.testing.assert_array_equal(theta_tl[0], 0)  # Frame 0 = rest state.
  np.testing.assert_array_equal(theta_tl[:, off_path], 0)
  assert np.all(np.abs(theta_tl[-1, path]) > 0)
  _, joints_tl2 = simulate.forward_kinematics(obj, theta_tl)
  roots = obj.parent < 0  # Joints on the fixed base never move.
  assert np.all(joints_tl2[:, roots] == joints_tl2[:1, roots])
  clip = clips.make_clip("train", index, estimate_flow=False)
  rest_angles, rest_joints = simulate.forward_kinematics(
    obj, np.zeros((1, obj.num_links))
  )
  np.testing.assert_allclose(
    clip["joints"][0, : obj.num_links], rest_joints[0] * S - 0.5, atol=1e-4
  )
  rest_frame = render.render_video(
    obj, scene.background, rest_angles, rest_joints, S
  )[0]
  np.testing.assert_array_equal(clip["video"][0], rest_frame)
  assert not np.array_equal(clip["video"][-1], rest_frame)


def _scene_poses(index):
  scene = clips.make_scene("test", index)
  angles_tl, joints_tl2 = simulate.forward_kinematics(scene.obj, scene.theta_tl)
  return scene.obj, angles_tl, joints_tl2


@pytest.mark.parametrize("index", range(6))
def test_gt_flow_carries_link_pixels_onto_the_same_link(index, clip_list):
  clip = clip_list[index]
  obj, angles_tl, joints_tl2 = _scene_poses(index)
  owner0 = render.owner_map(obj, angles_tl[0], joints_tl2[0], S)
  np.testing.assert_array_equal(clip["fg_mask"], owner0 != render.BACKGROUND)
  rows, cols = np.nonzero(owner0 >= 0)
  flow_k2 = clip["gt_flow"][rows, cols]
  assert np.all(clip["gt_flow"][owner0 < 0] == 0)
  # Pixel centres well inside their link in frame 0 (by 4x finer owner
  # maps) must land inside the same link in frame T, never on background;
  # a few may be hidden by a link drawn over it.
  fine = 4 * S
  fine0, fine_t = (
    render.owner_map(obj, angles_tl[t], joints_tl2[t], fine) for t in (0, -1)
  )
  at = lambda xy_k2: tuple(
    np.clip(np.floor(4 * (xy_k2[:, ::-1] + 0.5)).astype(int), 0, fine - 1).T
  )
  start_k2 = np.stack([cols, rows], -1).astype(np.float64)
  link_k = owner0[rows, cols]
  inside = np.ones(len(link_k), bool)
  for offset in np.mgrid[-1:2, -1:2].reshape(2, -1).T / 4:
    inside &= fine0[at(start_k2 + offset)] == link_k
  assert inside.mean() > 0.5
  landed = fine_t[at(start_k2 + flow_k2)][inside]
  assert np.all(landed != render.BACKGROUND)
  assert (landed == link_k[inside]).mean() > 0.9


@pytest.mark.parametrize("index", range(6))
def test_gt_flow_warps_last_frame_onto_first(index, clip_list):
  clip = clip_list[index]
  first, last = (clip["video"][i].astype(np.float32) for i in (0, -1))
  gt_hw2 = clip["gt_flow"]
  inside = cv2.erode(clip["fg_mask"], np.ones((3, 3), np.uint8)) > 0
  moving = inside & (np.linalg.norm(gt_hw2, axis=-1) > 1)
  if moving.sum() < 5:
    pytest.skip("no interior pixel moves by more than 1 px")
  grid_y, grid_x = np.mgrid[0:S, 0:S].astype(np.float32)
  warped = cv2.remap(
    last, grid_x + gt_hw2[..., 0], grid_y + gt_hw2[..., 1], cv2.INTER_LINEAR
  )
  err_warped = np.abs(warped - first)[moving].mean()
  err_still = np.abs(last - first)[moving].mean()
  assert err_warped < 0.4 * err_still


def test_poke_fields(clip_list):
  for clip in clip_list:
    row, col = clip["poke_pixel"]
    assert clip["fg_mask"][row, col] == 1
    np.testing.assert_allclose(
      clip["poke_displacement"], clip["gt_flow"][row, col], atol=1e-5
    )
    assert 0.5 < np.linalg.norm(clip["poke_displacement"]) < 20
    assert np.linalg.norm(clip["poke_impulse"]) > 0
    assert 0 <= clip["object_id"] < len(objects.KIND_NAMES)


def test_poked_point_displacement_matches_kinematics():
  for index in range(6):
    scene = clips.make_scene("test", index)
    clip = clips.make_clip("test", index, estimate_flow=False)
    track_t2 = simulate.point_track(
      scene.obj, scene.theta_tl, scene.link, scene.local_2
    )
    exact_2 = (track_t2[-1] - track_t2[0]) * S
    # The stored pixel is the nearest pixel centre, a nearby material point.
    np.testing.assert_allclose(clip["poke_displacement"], exact_2, atol=1.0)


def test_clip_features_spec():
  spec = features.clip_features(32, 5)
  assert set(spec.keys()) == set(features.SHARED_FEATURES)
  assert spec["video"].shape == (5, 32, 32, 3)
  assert spec["video"].np_dtype == np.uint8
  assert spec["flow"].shape == (32, 32, 2)
  with pytest.raises(ValueError, match="redefine"):
    features.clip_features(32, 5, {"flow": spec["flow"]})


EXPECTED = {
  "video": ((T1, S, S, 3), np.uint8),
  "flow": ((S, S, 2), np.float32),
  "fg_mask": ((S, S), np.uint8),
  "video_id": ((), np.int32),
  "start_frame": ((), np.int32),
  "object_id": ((), np.int32),
  "gt_flow": ((S, S, 2), np.float32),
  "pair_flow": ((S, S, 2), np.float32),
  "poke_pixel": ((2,), np.int32),
  "poke_displacement": ((2,), np.float32),
  "poke_impulse": ((2,), np.float32),
  "joints": ((T1, objects.J_MAX, 2), np.float32),
  "num_joints": ((), np.int32),
}


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  build.main(["--data_dir", data_dir, "--num_train", "8", "--num_test", "4"])
  return data_dir


def test_builder_splits_and_features(tiny_build):
  builder = build.build(tiny_build, num_train=8, num_test=4)  # Reused.
  assert builder.info.full_name == "articulated_pokes/64_train8_test4/1.0.0"
  assert {n: s.num_examples for n, s in builder.info.splits.items()} == {
    "train": 8,
    "test": 4,
  }
  spec = builder.info.features
  assert set(spec.keys()) == set(EXPECTED)
  for name, (shape, dtype) in EXPECTED.items():
    assert spec[name].shape == shape, name
    assert spec[name].np_dtype == dtype, name
  sources = builder.as_data_source()
  assert (len(sources["train"]), len(sources["test"])) == (8, 4)
  example = sources["test"][2]
  for name, (shape, dtype) in EXPECTED.items():
    assert np.shape(example[name]) == shape, name
    if shape:
      assert example[name].dtype == dtype, name
  expected = clips.make_clip("test", 2)
  for name in EXPECTED:
    np.testing.assert_array_equal(example[name], expected[name], err_msg=name)


def test_build_cli_reports_and_data_source_reads(tiny_build, capsys):
  build.main(["--data_dir", tiny_build, "--num_train", "8", "--num_test", "4"])
  out = capsys.readouterr().out
  assert "train: 8" in out and "test: 4" in out and "MiB" in out
  source = tfds.data_source(
    "articulated_pokes/64_train8_test4", split="train", data_dir=tiny_build
  )
  assert [source[i]["video_id"] for i in range(4)] == [0, 1, 2, 3]


def test_make_config_names():
  assert apb.make_config(64) is apb.Builder.BUILDER_CONFIGS[0]
  assert apb.make_config(128).name == "128"
  assert apb.make_config(64, num_train=8, num_test=4).name == (
    "64_train8_test4"
  )
  with pytest.raises(ValueError):
    apb.make_config(8)


def test_flow_estimator_from_config(tmp_path):
  opts = {"preset": "ultrafast"}
  name = apb.make_config(64, num_train=1, num_test=1, flow_options=opts).name
  assert name.startswith("64_train1_test1_flow-dis-")
  assert clips.flow_settings() == (
    clips.CHAINED_FLOW_KWARGS,
    clips.PAIR_FLOW_KWARGS,
  )
  raft_kw = clips.flow_settings("raft", {"weights": "w.npz", "iters": 4})
  assert (
    raft_kw[0]
    == raft_kw[1]
    == dict(method="raft", min_size=256, weights="w.npz", iters=4)
  )
  args = build._parser().parse_args(
    ["--data_dir", "x", "--flow_method", "raft", "--flow_weights", "w.npz"]
  )
  assert build.flow_options(args) == {"weights": "w.npz"}
  builder = build.build(
    str(tmp_path), num_train=1, num_test=1, flow_options=opts
  )
  assert builder.builder_config.name == name
  example = builder.as_data_source()["test"][0]
  video = example["video"]
  np.testing.assert_array_equal(
    example["pair_flow"],
    flow.estimate_flow(video[0], video[-1], preset="ultrafast"),
  )
  np.testing.assert_array_equal(
    example["flow"], flow.estimate_chained_flow(video, preset="ultrafast")
  )
  assert not np.array_equal(
    example["pair_flow"], clips.make_clip("test", 0)["pair_flow"]
  )
