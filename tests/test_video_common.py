"""The real-footage builders' shared machinery: geometry, splits, clips."""

import pathlib
import warnings

import imageio.v2 as imageio
import numpy as np
import pytest

from datasets.video_common import clips, frames, runner, splits
from datasets.video_folder import video_folder_dataset_builder as vfb
from flow.video_io import Source


def test_to_square_crops_or_squashes():
  frame = np.zeros((40, 100, 3), np.uint8)
  frame[:, 30:70] = 255  # The centred 40 x 40 square is white.
  crop = frames.to_square(frame, 20)
  assert crop.shape == (20, 20, 3) and crop.min() == 255
  squash = frames.to_square(frame, 20, aspect="squash")
  assert squash.shape == (20, 20, 3) and squash.min() == 0
  with pytest.raises(ValueError, match="aspect"):
    frames.to_square(frame, 20, aspect="pad")


def test_resize_flow_scales_vectors_and_aligns_corners():
  ramp = np.zeros((256, 256, 2), np.float32)
  ramp[..., 0] = np.arange(256, dtype=np.float32)[None, :]  # u = x.
  ramp[..., 1] = 8.0
  small = frames.resize_flow(ramp, 64)
  assert small.shape == (64, 64, 2)
  np.testing.assert_allclose(small[..., 1], 2.0)  # 8 px at 256 -> 2 at 64.
  # Corners map onto corners: x = 0 and x = 255 at 256 px.
  np.testing.assert_allclose(small[0, [0, -1], 0], [0.0, 255 / 4], rtol=1e-6)


def test_ratio_split_is_exact_seeded_and_stable():
  names = [f"v{i}" for i in range(10)]
  first = splits.ratio_split(names, 0.8)
  assert len(first["train"]) == 8 and len(first["test"]) == 2
  backwards = splits.ratio_split(names[::-1], 0.8)  # Only names count.
  assert set(backwards["train"]) == set(first["train"])
  assert first != splits.ratio_split(names, 0.8, seed=1)
  grown = splits.ratio_split(names + ["v10"], 0.8)  # Adds one video.
  moved = (set(first["train"]) ^ set(grown["train"])) - {"v10"}
  assert len(moved) <= 1
  two = splits.ratio_split(["a", "b"], 0.9)
  assert len(two["train"]) == 1 and len(two["test"]) == 1


def test_list_split_with_one_or_two_lists():
  names = ["a", "b", "sub/c", "d"]
  one, problems = splits.list_split(names, {"train": ["a", "sub/c", "x"]})
  assert one == {"train": ["a", "sub/c"], "test": ["b", "d"]}
  assert problems == {"x": "listed in train.txt but not found"}
  two, problems = splits.list_split(names, {"train": ["a"], "test": ["b"]})
  assert two == {"train": ["a"], "test": ["b"]}
  assert set(problems) == {"sub/c", "d"}
  with pytest.raises(ValueError, match="both"):
    splits.list_split(names, {"train": ["a"], "test": ["a"]})


def test_read_list_normalises_entries(tmp_path):
  listing = tmp_path / "train.txt"
  listing.write_text("./p1/walk.mp4\n\n# a comment\nframes\\seq  \nx.MKV # y\n")
  assert splits.read_list(listing) == ["p1/walk", "frames/seq", "x"]


def test_spec_validates_and_names_settings():
  assert clips.ClipSpec().name_suffix() == ""
  spec = clips.ClipSpec(frame_spacing=2, num_frames=6, flow_chained=True)
  assert spec.name_suffix() == "_frames6_spacing2_chained"
  assert spec.step == 5 and spec.flow_kwargs()["preset"] == "fast"
  assert clips.ClipSpec(flow_options={"preset": "fast"}).name_suffix()[:10] == (
    "_flow-dis-"
  )
  with pytest.raises(ValueError, match="weights"):
    clips.ClipSpec(flow_method="raft")
  with pytest.raises(ValueError):
    clips.ClipSpec(flow_options={"nonsense": 1})


def test_config_names():
  assert vfb.make_config(128) is vfb.Builder.BUILDER_CONFIGS[1]
  config = vfb.make_config(64, source_dir="/x/My Clips!", split="time")
  assert config.name == "My_Clips_64_time"
  config = vfb.make_config(32, tag="t", frame_spacing=8, split_ratio=0.5)
  assert config.name == "t_32_spacing8_ratio0.5"
  with pytest.raises(ValueError, match="split"):
    vfb.make_config(split="random")


@pytest.fixture(scope="module")
def counter_video(tmp_path_factory) -> Source:
  """40 frames whose grey level is 6 x the frame index."""
  path = tmp_path_factory.mktemp("counter") / "count.mkv"
  video = [np.full((32, 48, 3), 6 * t, np.uint8) for t in range(40)]
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    imageio.mimwrite(path, video, fps=10, macro_block_size=16, quality=10)
  return Source("count", pathlib.Path(path), "video")


def test_clips_follow_spacing_step_and_span(counter_video):
  spec = clips.ClipSpec(resolution=16, num_frames=4, frame_spacing=2)
  result = clips.video_examples(clips.VideoJob(counter_video, 7), spec)
  starts = [int(e["start_frame"]) for _, e in result.examples]
  assert starts == [0, 6, 12, 18, 24, 30]  # Clips span 6 raw frames.
  assert result.frames_decoded == 40
  grey = result.examples[1][1]["video"][:, 8, 8, 0].astype(int)
  np.testing.assert_allclose(grey, [36, 48, 60, 72], atol=3)  # 6, 8, 10, 12.
  test_part = clips.VideoJob(counter_video, 7, span=(0.5, 1.0))
  starts = [
    int(e["start_frame"])
    for _, e in clips.video_examples(test_part, spec).examples
  ]
  assert starts == [20, 26, 32]  # Frames 20..39 only.


def test_too_short_and_unreadable_are_reported(counter_video, tmp_path):
  spec = clips.ClipSpec(resolution=16, num_frames=21, frame_spacing=2)
  result, reason = runner.try_video(clips.VideoJob(counter_video, 0), spec)
  assert result is None and reason.startswith("too short: 20 sampled")
  missing = Source("gone", tmp_path / "gone.mp4", "video")
  result, reason = runner.try_video(clips.VideoJob(missing, 0), spec)
  assert result is None and "no such file" in reason.lower()


def test_ordered_map_keeps_order_with_workers():
  items = list(range(7))
  assert list(runner.ordered_map(abs, items, 2)) == items
  assert list(runner.ordered_map(abs, items, 0)) == items


def test_time_split_puts_every_video_in_both_splits(counter_video):
  config = vfb.make_config(16, tag="t", split="time", split_ratio=0.75)
  root = counter_video.path.parent
  jobs, problems = vfb.assign([counter_video], config, root)
  assert problems == {}
  assert [j.span for j in jobs["train"]] == [(0.0, 0.75)]
  assert [j.span for j in jobs["test"]] == [(0.75, 1.0)]
  assert jobs["train"][0].video_id == jobs["test"][0].video_id == 0
