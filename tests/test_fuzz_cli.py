"""Seeded fuzz of launch.py, flow.precompute, the video_folder builder,
sample, evaluate and convert.

Several hundred wrong command lines, each run with a timeout beside an
existing trained workdir, dataset, flow folder and video_folder build that
it must not touch: 0 tracebacks, 0 hangs, 0 files changed or gone, and
every user error is exit status 2 with one `error:` line. Most cases run
in-process (the CLI's main); a sample runs as real subprocesses.
"""

import json
import random
import shutil

import numpy as np
import pytest
import real_clips
from fuzz_cli import FINE, Case, mutate, problems, run_case, snapshot
from test_convert import reference_shapes

from ii2v_jax.convert import torch_checkpoint as tc

SEED = 20260501

# (argv words, scope): "any" is refused in every mode, "train" only when
# training (it needs the dataset or the workdir).
LAUNCH_BAD = [
  (["--config.train.batch_size=-3"], "any"),
  (["--config.train.batch_size=0"], "any"),
  (["--config.train.batch_size=3"], "any"),  # 8 devices.
  (["--config.train.batch_size=abc"], "any"),
  (["--config.train.batch_size=2.5"], "any"),
  (["--config.train.batch_size=1000"], "train"),  # The split holds 16.
  (["--config.train.num_steps=-5"], "any"),
  (["--config.train.log_every=0"], "any"),
  (["--config.train.checkpoint_every=0"], "any"),
  (["--config.train.keep_checkpoints=0"], "any"),
  (["--config.train.keep_checkpoints=-1"], "any"),
  (["--config.train.sample_every=-1"], "any"),
  (["--config.optim.lr=nan"], "any"),
  (["--config.optim.lr=inf"], "any"),
  (["--config.optim.lr=-1e-4"], "any"),
  (["--config.optim.lr=0"], "any"),
  (["--config.optim.eps=0"], "any"),
  (["--config.optim.eps=nan"], "any"),
  (["--config.optim.b1=1.0"], "any"),
  (["--config.optim.b2=-0.5"], "any"),
  (["--config.optim.lr_reduce=0"], "any"),
  (["--config.model.channels=0"], "any"),
  (["--config.model.channels=-16"], "any"),
  (["--config.model.channels=32"], "train"),  # Not the checkpoint's 16.
  (["--config.model.poke_channels=0"], "any"),
  (["--config.model.min_channels=-4"], "any"),
  (["--config.model.dtype=float16"], "any"),
  (["--config.model.output_head=bogus"], "any"),
  (["--config.data.resolution=100"], "any"),
  (["--config.data.resolution=0"], "any"),
  (["--config.data.resolution=-64"], "any"),
  (["--config.data.resolution=128"], "train"),  # The build is 64.
  (["--config.data.num_frames=0"], "any"),
  (["--config.data.num_frames=5"], "train"),  # The build stores 11.
  (["--config.data.poke_size=1000"], "any"),
  (["--config.data.poke_size=0"], "any"),
  (["--config.data.name="], "any"),
  (["--config.data.name=nope/64"], "train"),
  (["--config.data.name=articulated_pokes"], "train"),
  (["--config.data.data_dir=/nonexistent/data"], "train"),
  (["--config.data.p_color=1.5"], "any"),
  (["--config.data.p_geom=nan"], "any"),
  (["--config.data.max_pokes=0"], "any"),
  (["--config.data.zero_poke_fraction=2"], "any"),
  (["--config.data.num_workers=-1"], "any"),
  (["--config.data.train_split=nope"], "train"),
  (["--config.mesh.data=0"], "any"),
  (["--config.mesh.data=5"], "any"),
  (["--config.mesh.data=16"], "any"),
  (["--config.mesh.data=-2"], "any"),
  (["--config.gan.temporal_width=48"], "any"),
  (["--config.gan.start_iteration=-1"], "any"),
  (["--config.gan.patch_num_frames=0"], "any"),
  (["--config.loss.perceptual_net=vgg11"], "any"),
  (["--config.loss.perceptual_net=vgg19"], "any"),  # No weights.
  (["--config.loss.perceptual_layers=relu9_9"], "any"),
  (["--config.loss.flow_weight=1.0"], "any"),  # Pixels head.
  (["--config.loss.ae_weight=-1"], "any"),
  (["--config.loss.perceptual_weights=/nonexistent/vgg.npz"], "any"),
  (["--config.eval.metrics=bogus"], "any"),
  (["--config.eval.fvd_clips=1"], "any"),
  (["--config.eval.num_clips=0"], "any"),
  (["--config.seed=-1"], "any"),
  (["--config.foo.bar=1"], "any"),
  (["--config.train.bach_size=8"], "any"),
  (["--config.train.progress_bar=maybe"], "any"),
  (["--mode=bogus"], "any"),
  (["--wokdir=x"], "any"),
]


@pytest.fixture(scope="module")
def world(tiny_workdir, tiny_data, tmp_path_factory):
  """The things the cases must not touch, and the files they point at."""
  from datasets.video_folder import build
  from flow import precompute

  root = tmp_path_factory.mktemp("fuzz")
  workdir = root / "trained"
  shutil.copytree(tiny_workdir, workdir)
  src = root / "videos"
  src.mkdir()
  frames = real_clips.read_frames("carphone_pristine.mp4", range(60))
  import imageio.v2 as imageio

  imageio.mimwrite(src / "car.mp4", frames, fps=25, macro_block_size=16)
  flow_dir = root / "flow"
  precompute.precompute(src, flow_dir, progress=False)
  built = root / "built"
  build.build(str(src), str(built), resolution=32, tag="t", progress=False)
  files = root / "files"
  files.mkdir()
  (files / "afile").write_text("a file, not a folder\n")
  (files / "broken.py").write_text("def get_config(:\n")
  (files / "list.py").write_text("def get_config():\n  return [1]\n")
  (files / "raises.py").write_text("def get_config():\n  raise KeyError(1)\n")
  (files / "none.py").write_text("def get_config():\n  pass\n")
  for name, text in [("garbage", "{not json"), ("listcfg", "[1, 2]")]:
    (files / name).mkdir()
    (files / name / "config.json").write_text(text)
    # With checkpoints/ beside it, sample gets as far as reading it.
    (files / f"{name}_ck" / "checkpoints").mkdir(parents=True)
    (files / f"{name}_ck" / "config.json").write_text(text)
  (files / "raft.npz").write_text("not a zip\n")
  # A valid tiny generator state_dict: convert gets past reading its input.
  shapes = reference_shapes(64, channels=16, poke_channels=4, min_channels=4)
  tc.save_npz(
    {k: np.zeros(v, np.float32) for k, v in shapes.items()}, files / "gen.npz"
  )
  data_dir, name = tiny_data
  return dict(
    workdir=workdir,
    data_dir=data_dir,
    name=name,
    src=src,
    flow=flow_dir,
    built=built,
    files=files,
    protected=[workdir, data_dir, flow_dir, built],
  )


def launch_cases(w, rng) -> list[Case]:
  f = w["files"]
  base = ["--config", "configs/tiny.py", "--workdir", str(w["workdir"])]
  base += [f"--config.data.data_dir={w['data_dir']}"]
  base += [f"--config.data.name={w['name']}"]
  describe = base + ["--mode=describe", "--nocompile"]
  anywhere = [words for words, scope in LAUNCH_BAD if scope == "any"]
  cases = mutate("launch", base, [w for w, _ in LAUNCH_BAD], rng, 120)
  cases += mutate("launch", describe, anywhere, rng, 35)
  for words in (
    ["--config", "configs/nope.py"],
    ["--config", "configs"],
    ["--config", str(f / "broken.py")],
    ["--config", str(f / "list.py")],
    ["--config", str(f / "raises.py")],
    ["--config", str(f / "none.py")],
    ["--config", str(f / "afile")],
    ["--config", "configs/iper.py:abc"],
    ["--config", "configs/iper.py:96"],
    ["--workdir", "x"],
  ):
    cases.append(Case("launch", tuple(words + ["--mode=describe"])))
  tail = base[4:]
  for workdir in (
    f / "afile",
    "/proc/fuzz/run",
    f / "garbage",
    f / "listcfg",
    f / "afile" / "below",
  ):
    argv = ["--config", "configs/tiny.py", "--workdir", str(workdir), *tail]
    cases.append(Case("launch", tuple(argv)))
  return cases


PRECOMPUTE_BAD = [
  ["--preset", "bogus"],
  ["--preset", ""],
  ["--method", "raft"],
  ["--method", "raft", "--weights", "/nonexistent.npz"],
  ["--method", "bogus"],
  ["--lag", "0"],
  ["--lag", "-1"],
  ["--lag", "x"],
  ["--stride", "0"],
  ["--batch_size", "0"],
  ["--batch_size", "-5"],
  ["--dtype", "float64"],
  ["--min_size", "-1"],
  ["--iters", "0"],
  ["--bogus_flag"],
]


def precompute_cases(w, rng) -> list[Case]:
  f, src, out = w["files"], str(w["src"]), str(w["flow"])
  base = ["--no_progress", "--frames", src, "--out", out]
  table = PRECOMPUTE_BAD + [
    ["--method", "raft", "--weights", str(f / "raft.npz")],
    ["--out", str(f / "afile")],
    ["--out", "/proc/fuzz/flow"],
    ["--frames", "/nonexistent/videos"],
    ["--frames", str(f / "garbage")],  # No videos in it.
  ]
  cases = mutate("precompute", base, table, rng, 65)
  # Other settings into the existing folder: refused, nothing rewritten.
  for words in (["--lag", "2"], ["--preset", "fast"], ["--dtype", "float32"]):
    cases.append(Case("precompute", tuple(base + words)))
  cases.append(Case("precompute", tuple(base), FINE))  # All already done.
  return cases


VIDEO_FOLDER_BAD = [
  ["--resolution", "100"],
  ["--resolution", "-64"],
  ["--resolution", "0"],
  ["--resolution", "x"],
  ["--num_frames", "0"],
  ["--num_frames", "1"],
  ["--frame_spacing", "0"],
  ["--clip_step", "0"],
  ["--flow_preset", "bogus"],
  ["--flow_method", "raft"],
  ["--flow_target", "50"],
  ["--flow_size", "0"],
  ["--split_ratio", "1.5"],
  ["--split_ratio", "nan"],
  ["--split_seed", "-1"],
  ["--num_workers", "-1"],
  ["--mask_margin", "-3"],
  ["--aspect", "wide"],
  ["--split_files"],  # No train.txt / test.txt.
]


def video_folder_cases(w, rng) -> list[Case]:
  f = w["files"]
  base = ["--no_progress", "--source", str(w["src"]), "--tag", "t"]
  base += ["--resolution", "32", "--data_dir", str(w["built"])]
  table = VIDEO_FOLDER_BAD + [
    ["--source", "/nonexistent/videos"],
    ["--source", str(f / "garbage")],
    ["--data_dir", str(f / "afile")],
    ["--data_dir", "/proc/fuzz/data"],
    ["--flow_method", "raft", "--flow_weights", str(f / "raft.npz")],
  ]
  cases = mutate("video_folder", base, table, rng, 65)
  # The same tag from another folder: refused, the build kept.
  other = ["--source", str(f), "--tag", "t", "--split_by_time"]
  cases.append(Case("video_folder", tuple(base + other[:4])))
  cases.append(Case("video_folder", tuple(base), FINE))  # Reused.
  return cases


def other_cases(w, rng) -> list[Case]:
  """sample, evaluate and convert on the trained workdir: each refusal once,
  then random mixes of them."""
  f, base = w["files"], ["--workdir", str(w["workdir"])]
  good = ["--poke", "10,10,1,1"]
  sample = [
    ["--poke", "abc"],
    ["--poke", "1,2,3"],
    ["--poke", "1e300,1,1,1"],
    ["--poke", "nan,1,1,1"],
    good + ["--num_frames", "0"],
    good + ["--num_frames", "101"],
    good + ["--num_frames", "100000"],
    good + ["--num_frames", "x"],
    good + ["--fps", "0"],
    good + ["--fps", "-1"],
    good + ["--fps", "61"],
    good + ["--fps", "2.5"],
    good + ["--fit", "bogus"],
    good + ["--bogus"],
    good + ["--out", str(f)],  # A folder.
    good + ["--out", "/proc/fuzz/o.mp4"],
    good + ["--out", str(f / "afile" / "o.mp4")],
    good + ["--out", ""],
    good + ["--image", "/nonexistent.png"],
    good + ["--image", str(f / "afile")],
    good + ["--workdir", str(f / "garbage_ck")],
    good + ["--workdir", str(f / "listcfg_ck")],
    good + ["--workdir", str(f / "afile")],
  ]
  evaluate = [
    ["--num_clips", "-5"],
    ["--num_clips", "0"],
    ["--num_clips", "abc"],
    ["--fvd_clips", "1"],
    ["--fvd_clips", "1.5"],
    ["--seed", "x"],
    ["--metrics", "bogus"],
    ["--metrics", ""],
    ["--split", "nope"],
    ["--split", ""],
    ["--bogus"],
    ["--workdir", str(f / "afile")],
    ["--workdir", str(f)],  # No config.json.
    ["--workdir", "/nonexistent/run"],
    ["--workdir", str(f / "garbage")],
    ["--workdir", str(f / "listcfg_ck")],
  ]
  cases = [Case("sample", tuple(base + words)) for words in sample]
  cases.append(Case("sample", tuple(base)))  # No --poke.
  cases += mutate("sample", base, sample, rng, 20)
  cases += [Case("evaluate", tuple(base + words)) for words in evaluate]
  cases.append(Case("evaluate", tuple(base + ["--workdir"])))
  cases += mutate("evaluate", base, evaluate, rng, 15)
  return cases + convert_cases(w)


def convert_cases(w) -> list[Case]:
  """convert: bad flags and outputs; with --force, a bad input or config
  must leave the trained run alone."""
  f, trained = w["files"], str(w["workdir"])
  gen = [
    "--torch_checkpoint",
    str(f / "gen.npz"),
    "--config",
    "configs/tiny.py",
  ]
  cases = [
    [],
    ["--workdir", trained],
    ["--torch_checkpoint", str(f / "gen.npz")],
    ["--bogus"],
    ["--torchvision_vgg19", "/nonexistent.pth"],  # No --out.
    ["--torchvision_vgg19", str(f / "gen.npz"), "--out", "/proc/fuzz/v.npz"],
    gen + ["--workdir", trained],  # Holds checkpoints; no --force.
    gen + ["--workdir", "/proc/fuzz/run", "--force"],
    gen + ["--workdir", str(f / "afile"), "--force"],
    gen + ["--workdir", str(f / "afile" / "below")],
  ]
  for words in (
    ["--torch_checkpoint", "/nonexistent.pt"],
    ["--torch_checkpoint", str(f / "afile")],
    ["--torch_checkpoint", str(f / "raft.npz")],
    ["--torch_checkpoint", str(f)],
    ["--step", "-3"],
    ["--step", "abc"],
    ["--config", "configs/nope.py"],
    ["--config", "configs/iper.py:abc"],
    ["--disc_patch_checkpoint", str(f / "gen.npz")],  # Not a patch D.
    ["--disc_temporal_checkpoint", "/nonexistent.pt"],
  ):
    cases.append(gen + ["--workdir", trained, "--force"] + words)
  return [Case("convert", tuple(words)) for words in cases]


def subprocess_sample(cases, w, rng) -> list[Case]:
  """Some cases again as real processes, and two that must succeed."""
  picked = rng.sample(cases, 6)
  out = [Case(c.entry, c.argv, c.expect, True, 120) for c in picked]
  base = ["--config", "configs/tiny.py", "--mode=describe", "--nocompile"]
  out.append(Case("launch", tuple(base), FINE, True, 120))
  out.append(Case("launch", tuple(base), FINE))
  return out


def test_fuzz_command_lines(world):
  rng = random.Random(SEED)
  cases = launch_cases(world, rng)
  cases += precompute_cases(world, rng)
  cases += video_folder_cases(world, rng)
  cases += other_cases(world, rng)
  cases += subprocess_sample(cases, world, rng)
  assert len(cases) >= 300
  protected = world["protected"]
  start = snapshot(*protected)
  assert len(start) > 20
  failures, before, seconds = [], start, {}
  for case in cases:
    outcome = run_case(case)
    after = snapshot(*protected)
    found = problems(case, outcome, before, after)
    if found:
      failures.append(f"{case}: {'; '.join(found)}")
    before = after
    seconds[case.entry] = seconds.get(case.entry, 0.0) + outcome.seconds
  assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(
    failures[:30]
  )
  assert snapshot(*protected) == start
  seconds = {k: round(v, 1) for k, v in seconds.items()}
  print(json.dumps({"cases": len(cases), "seconds": seconds}))


def test_harness_sees_tracebacks_hangs_and_damage(tmp_path, monkeypatch):
  """The checks fail when they should (a harness that cannot fail proves
  nothing)."""
  import fuzz_cli

  def crash(argv):
    raise RuntimeError("boom")

  def hang(argv):
    while True:
      np.sum(np.ones(10))

  def lines(argv):
    print("usage: x\nerror: one\nerror: two", file=__import__("sys").stderr)
    return 2

  for name, fn in [("crash", crash), ("hang", hang), ("lines", lines)]:
    monkeypatch.setitem(fuzz_cli.ENTRIES, name, fuzz_cli.Entry(fn, ()))
  (tmp_path / "f").write_text("x")
  before = snapshot(tmp_path)
  crash_out = run_case(Case("crash", ()))
  assert any(
    "traceback" in p
    for p in problems(Case("crash", ()), crash_out, before, before)
  )
  hang_case = Case("hang", (), timeout=0.5)
  assert any(
    "hang" in p
    for p in problems(hang_case, run_case(hang_case), before, before)
  )
  lines_out = run_case(Case("lines", ()))
  assert any(
    "one 'error:' line" in p
    for p in problems(Case("lines", ()), lines_out, before, before)
  )
  (tmp_path / "f").write_text("y")
  damaged = problems(Case("lines", ()), lines_out, before, snapshot(tmp_path))
  assert any("changed" in p for p in damaged)
