"""The evaluation protocol on a tiny trained workdir."""

import json

import numpy as np

from ii2v_jax import data, evaluate, inference


def test_writes_eval_json_with_model_and_baseline(tiny_workdir):
  summary = evaluate.evaluate(tiny_workdir, num_clips=4)
  saved = json.loads(open(f"{tiny_workdir}/eval.json").read())
  assert saved == summary
  for k in ("lpips", "lpips_baseline", "poke_epe", "poke_epe_baseline"):
    assert np.isfinite(summary[k])
  assert summary["num_clips"] == 4 and len(summary["lpips_per_frame"]) == 10
  # Copying x_0 shows no motion, so its poke error is the poke's length.
  config = inference.load_model(tiny_workdir)[0]
  n, load = data.eval_examples(config.data, num_clips=4, seed=config.eval.seed)
  lengths = [np.linalg.norm(load(i)["poke_uv"]) for i in range(n)]
  assert abs(summary["poke_epe_baseline"] - np.mean(lengths)) < 0.05
  assert "| LPIPS" in open(f"{tiny_workdir}/eval.md").read()


def test_eval_pokes_are_seeded(tiny_workdir):
  config = inference.load_model(tiny_workdir)[0]
  _, load_a = data.eval_examples(config.data, num_clips=4, seed=7)
  _, load_b = data.eval_examples(config.data, num_clips=4, seed=7)
  _, load_c = data.eval_examples(config.data, num_clips=4, seed=8)
  a, b, c = (
    data.stack([f(i) for i in range(4)]) for f in (load_a, load_b, load_c)
  )
  np.testing.assert_array_equal(a["poke"], b["poke"])
  assert not np.array_equal(a["poke_rc"], c["poke_rc"])
