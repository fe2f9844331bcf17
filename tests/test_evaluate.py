"""The evaluation protocol on a tiny trained workdir."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest

import flow
from ii2v_jax.data import pipeline
from ii2v_jax.evaluate import batch_metrics, protocol, report, tracking
from ii2v_jax.io import checkpoint
from ii2v_jax.models.inference import to_unit_range
from ii2v_jax.parallel import sharding
from ii2v_jax.pretrained import lpips
from ii2v_jax.training import train, writer

T = 10
PAIRED = ("lpips", "ssim", "ssim_pl09", "psnr", "psnr_pl09", "joint_epe")
SCALAR_ONLY = ("fvd", "poke_epe")


def _clips(config, n):
  n, load = pipeline.eval_examples(
    config.data, num_clips=n, seed=config.eval.seed
  )
  return pipeline.stack([load(i) for i in range(n)])


def test_writes_every_metric_for_model_and_baseline(tiny_workdir):
  summary = protocol.evaluate(tiny_workdir, num_clips=4)
  saved = json.loads(open(f"{tiny_workdir}/eval.json").read())
  assert saved == summary
  assert summary["num_clips"] == 4 and summary["fvd_num_clips"] == 4
  assert summary["metrics"] == list(batch_metrics.ALL_METRICS)
  for key in PAIRED + SCALAR_ONLY:
    for k in (key, f"{key}_baseline"):
      assert np.isfinite(summary[k]), k
      if key in PAIRED:
        assert len(summary[f"{k}_per_frame"]) == T, k
  assert np.isfinite(summary["joint_epe_real"])
  # The headline joint error is the one at frame T.
  assert summary["joint_epe"] == pytest.approx(
    summary["joint_epe_per_frame"][-1]
  )
  assert {"rollout_s", "flow_s", "i3d_s", "total_s"} <= set(summary["timings"])
  # Copying x_0 shows no motion: its errors are the true motions' lengths.
  clips = _clips(checkpoint.load_model(tiny_workdir)[0], 4)
  lengths = np.linalg.norm(clips["poke_uv"], axis=-1)
  assert summary["poke_epe_baseline"] == pytest.approx(lengths.mean(), abs=0.05)
  moves = [
    np.linalg.norm(j[-1, :k] - j[0, :k], axis=-1).mean()
    for j, k in zip(clips["joints"], clips["num_joints"])
  ]
  assert summary["joint_epe_baseline"] == pytest.approx(
    np.mean(moves), abs=0.05
  )
  md = open(f"{tiny_workdir}/eval.md").read()
  assert "| LPIPS" in md and "PL 0.9" in md and "| FVD" in md
  with PIL.Image.open(f"{tiny_workdir}/eval_curves.png") as im:
    im.verify()
    assert im.format == "PNG" and im.size[0] > im.size[1] > 100


def test_a_model_that_copies_x0_scores_as_the_baseline(tiny_workdir):
  config, _, params, _ = checkpoint.load_model(tiny_workdir)

  def copy_rollout(params, x0_bhwc, poke_bhw2):
    del params, poke_bhw2
    return jnp.broadcast_to(
      x0_bhwc[:, None], (len(x0_bhwc), T) + x0_bhwc.shape[1:]
    )

  summary = protocol.run_protocol(
    config, copy_rollout, params, num_clips=5, fvd_clips=3, progress=False
  )
  assert summary["fvd_num_clips"] == 3
  # Float image metrics see identical inputs: equal numbers (LPIPS's VGG
  # sees x_0 once for the baseline, T times for the model).
  for key in ("lpips", "ssim", "ssim_pl09", "psnr", "psnr_pl09"):
    np.testing.assert_allclose(
      [summary[key]] + summary[f"{key}_per_frame"],
      [summary[f"{key}_baseline"]] + summary[f"{key}_baseline_per_frame"],
      rtol=1e-6,
      err_msg=key,
    )
  # The model's frames pass through uint8 truncation (one level lower at
  # some values), the baseline's are x_0 itself: close, not equal.
  for key in ("poke_epe", "joint_epe", "fvd"):
    assert summary[key] == pytest.approx(summary[f"{key}_baseline"], rel=0.05)


def test_frame_metrics_compare_aligned_frames(tiny_config):
  clips = _clips(tiny_config, 2)
  video = jnp.asarray(clips["video"])
  params = lpips.load_lpips_params("vgg")
  which = batch_metrics.IMAGE_METRICS
  exact = jax.jit(batch_metrics.frame_metrics, static_argnames="which")
  perfect = exact(params, video, to_unit_range(video[:, 1:]), which=which)
  np.testing.assert_allclose(perfect["lpips"], 0.0, atol=1e-6)
  np.testing.assert_allclose(perfect["ssim"], 1.0, atol=1e-5)
  assert perfect["lpips_baseline"].shape == (2, T)
  assert np.all(perfect["lpips_baseline"][:, -1] > 0)
  late = exact(params, video, to_unit_range(video[:, :-1]), which=which)
  assert np.all(late["lpips"][:, -1] > 0)  # One frame late is not perfect.
  pl09 = batch_metrics.pl09_metrics(
    video, to_unit_range(video[:, 1:]), 1, which=which
  )
  assert pl09["ssim_pl09"] == pytest.approx(1.0, abs=1e-5)
  assert pl09["psnr_pl09"] == np.inf and pl09["psnr_pl09_t"].shape == (T,)


def test_metrics_flag_selects_a_subset(tiny_workdir):
  args = ["--workdir", tiny_workdir, "--num_clips", "2", "--metrics", "lpips"]
  assert protocol.main(args) == 0
  summary = json.loads(open(f"{tiny_workdir}/eval.json").read())
  assert summary["metrics"] == ["lpips"]
  assert len(summary["lpips_baseline_per_frame"]) == T
  for key in ("ssim", "psnr_pl09", "fvd", "poke_epe", "joint_epe"):
    assert key not in summary
  with PIL.Image.open(f"{tiny_workdir}/eval_curves.png") as im:
    assert im.format == "PNG"
  bad = ["--workdir", tiny_workdir, "--metrics", "lpips,iou"]
  assert protocol.main(bad) == 2


def test_tracked_points_equal_chained_flow(tiny_config):
  video = _clips(tiny_config, 1)["video"][0]
  steps = tracking.step_flows(video)
  rows, cols = np.array([3, 20, 40, 63]), np.array([0, 31, 17, 50])
  tracked = tracking.track_points(steps, np.stack([cols, rows], -1))
  assert tracked.shape == (T, 4, 2)
  chained = flow.estimate_chained_flow(video)
  np.testing.assert_allclose(tracked[-1], chained[rows, cols], atol=1e-4)
  static = tracking.static_step_flows(video[0], T)
  np.testing.assert_array_equal(
    static, tracking.step_flows(np.repeat(video[:1], T + 1, 0))
  )


def test_training_logs_periodic_test_metrics(
  tiny_config, tmp_path, monkeypatch
):
  logged = []
  original = writer.Writer.scalars

  def spy(self, step, metrics):
    logged.append((step, dict(metrics)))
    original(self, step, metrics)

  monkeypatch.setattr(writer.Writer, "scalars", spy)
  tiny_config.train.num_steps = 2
  tiny_config.eval.every, tiny_config.eval.train_clips = 2, 3
  train.train_and_evaluate(tiny_config, str(tmp_path))
  evals = [(s, m) for s, m in logged if "eval/lpips" in m]
  assert [s for s, _ in evals] == [2]
  assert set(evals[0][1]) == {"eval/lpips", "eval/ssim", "eval/psnr"}
  assert all(np.isfinite(v) for v in evals[0][1].values())


def test_periodic_eval_is_off_by_default(tiny_config):
  mesh = sharding.make_mesh(-1)
  assert tiny_config.eval.every == 0
  assert batch_metrics.make_periodic_eval(tiny_config, None, mesh) is None


def test_eval_pokes_are_seeded(tiny_workdir):
  config = checkpoint.load_model(tiny_workdir)[0]
  _, load_a = pipeline.eval_examples(config.data, num_clips=4, seed=7)
  _, load_b = pipeline.eval_examples(config.data, num_clips=4, seed=7)
  _, load_c = pipeline.eval_examples(config.data, num_clips=4, seed=8)
  a, b, c = (
    pipeline.stack([f(i) for i in range(4)]) for f in (load_a, load_b, load_c)
  )
  np.testing.assert_array_equal(a["poke"], b["poke"])
  assert not np.array_equal(a["poke_rc"], c["poke_rc"])


@pytest.mark.parametrize(
  "flag, value, says",
  [
    ("--num_clips", "-5", "--num_clips must be at least 1"),
    ("--num_clips", "0", "--num_clips must be at least 1"),
    ("--fvd_clips", "1", "--fvd_clips must be at least 2"),
    ("--split", "validation", "choose from test, train"),
    ("--metrics", "lpips,iou", "--metrics 'lpips,iou'"),
  ],
)
def test_bad_arguments_leave_the_report_untouched(
  tiny_workdir, tmp_path, capsys, flag, value, says
):
  workdir = tmp_path / "run"
  shutil.copytree(tiny_workdir, workdir)
  (workdir / "eval.json").write_text('{"step": 2, "lpips": 0.1}\n')
  before = (workdir / "eval.json").read_bytes()
  assert protocol.main(["--workdir", str(workdir), flag, value]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and "\n" not in err and says in err, err
  assert (workdir / "eval.json").read_bytes() == before


def test_a_failed_report_keeps_the_previous_one(tmp_path, monkeypatch):
  summary = {"step": 1, "split": "test", "num_clips": 2, "seed": 0}
  summary["lpips_per_frame"] = [0.1, 0.2]
  report.write_report(str(tmp_path), summary)
  files = sorted(p.name for p in tmp_path.iterdir())
  assert files == ["eval.json", "eval.md", "eval_curves.png"]
  before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

  def broken(summary, path):
    raise OSError("disk full")

  monkeypatch.setattr(report, "plot_curves", broken)
  with pytest.raises(OSError, match="disk full"):
    report.write_report(str(tmp_path), dict(summary, step=2))
  assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_an_unwritable_report_is_one_line(tiny_workdir, tmp_path, capsys):
  workdir = tmp_path / "run"
  shutil.copytree(tiny_workdir, workdir)
  (workdir / "eval.md").unlink(missing_ok=True)
  (workdir / "eval.md").mkdir()  # Cannot be replaced by a file.
  argv = ["--workdir", str(workdir), "--num_clips", "2", "--metrics", "ssim"]
  assert protocol.main(argv) == 2
  err = capsys.readouterr().err  # The progress bar, then one line.
  assert "Traceback" not in err
  assert err.strip().splitlines()[-1].startswith("error: cannot write the")
  assert not list(workdir.glob(".eval*"))
