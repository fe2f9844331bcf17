"""The evaluation summary and its files: eval.json, eval.md, eval_curves.png.

Key convention of the summary: `<metric>` is the model, `<metric>_baseline`
the copy-the-first-frame baseline, `<metric>_per_frame` the curve over
t = 1..T (mean over clips). `ssim` / `psnr` are the standard per-frame
definitions, `ssim_pl09` / `psnr_pl09` the reference's batch-level
pytorch-lightning 0.9 flavour (REFERENCE.md §9.4).
"""

import json
import os
import pathlib

import numpy as np

# Tracked displacements accumulate over the clip: their headline number is
# the error at frame T (the poke's horizon), not the mean over frames.
FINAL_FRAME_METRICS = ("joint_epe",)

FLAVOURS = {
  "ssim": "standard: per frame, fixed data range (R = 2 on [-1, 1], i.e. "
  "L = 1 on [0, 1]), valid 11x11 Gaussian window; mean over frames",
  "psnr": "standard: per frame, 10 log10(R^2 / MSE_frame), R = 2 on [-1, 1]; "
  "mean over frames",
  "ssim_pl09": "reference (pytorch-lightning 0.9): one value per batch of "
  "B*T frames with the batch's data range; clip-weighted mean over batches",
  "psnr_pl09": "reference (pytorch-lightning 0.9): one pooled MSE per batch "
  "and the batch's data range; clip-weighted mean over batches",
  "lpips": "LPIPS v0.1, VGG16, inputs in [-1, 1]; mean over frames",
  "fvd": "I3D Kinetics-400 logits, predicted x_1..x_T vs real x_1..x_T "
  "(x_0 excluded), uint8 by truncation, TF1 bilinear resize to 224",
  "poke_epe": "|displacement shown at the poked pixel, x_0 -> x_T (chained "
  "DIS) - poke vector|, px at S",
  "joint_epe": "per tracked joint: |displacement shown at the joint's "
  "frame-0 position (chained DIS) - true joint displacement|, px at S; "
  "mean over joints, then clips; headline = frame T; `_real` = the same "
  "on the ground-truth clip (the flow estimator's floor)",
}

_ROWS = (
  ("lpips", "LPIPS (VGG16, mean over frames), lower is better"),
  ("ssim", "SSIM, standard per frame (L = 1), higher is better"),
  ("ssim_pl09", "SSIM, reference PL 0.9 batch-level, higher is better"),
  ("psnr", "PSNR dB, standard per frame, higher is better"),
  ("psnr_pl09", "PSNR dB, reference PL 0.9 pooled per batch"),
  ("fvd", "FVD (I3D, x_1..x_T), lower is better"),
  ("poke_epe", "poke EPE (px at S, frame T), lower is better"),
  ("joint_epe", "joint-tracking EPE (px at S, frame T), lower is better"),
  ("joint_epe_real", "joint-tracking EPE of the real clip (flow floor)"),
)

_PANELS = (
  ("LPIPS (VGG16)", ("lpips",)),
  ("SSIM", ("ssim", "ssim_pl09")),
  ("PSNR (dB)", ("psnr", "psnr_pl09")),
  ("joint EPE (px)", ("joint_epe", "joint_epe_real")),
)


def _mean_curve(v: np.ndarray) -> list[float]:
  return [float(x) for x in np.mean(v, axis=0)]


def summarize(per_clip: dict, per_batch: dict, weights, meta: dict) -> dict:
  """One JSON-ready dict of every metric.

  Args:
    per_clip: {name: (N,) or (N, T)} values of each clip.
    per_batch: {name: (B_n,)} batch-level values and {name + "_t": (B_n,
      T)} their per-step values (the `_pl09` metrics).
    weights: (B_n,) clips in each batch, to weight batch-level values.
    meta: step, split, seed, timings, ... copied first.
  """
  out = dict(meta)
  for k, v in per_clip.items():
    v = np.asarray(v, np.float64)
    final = any(k.startswith(m) for m in FINAL_FRAME_METRICS)
    out[k] = float(np.mean(v[:, -1] if final and v.ndim == 2 else v))
    if v.ndim == 2:
      out[f"{k}_per_frame"] = _mean_curve(v)
  if per_batch:
    w = np.asarray(weights, np.float64) / np.sum(weights)
    for k, v in per_batch.items():
      v = np.stack(v).astype(np.float64)
      if k.endswith("_t"):
        out[f"{k[:-2]}_per_frame"] = [float(x) for x in w @ v]
      else:
        out[k] = float(w @ v)
  out["definitions"] = {
    k: d for k, d in FLAVOURS.items() if any(m.startswith(k) for m in out)
  }
  return out


def markdown(summary: dict) -> str:
  """A model-vs-baseline Markdown table of the metrics present."""
  head = (
    f"Evaluation at step {summary['step']}, split '{summary['split']}', "
    f"{summary['num_clips']} clips, seed {summary['seed']}"
  )
  if "fvd_num_clips" in summary:
    head += f"; FVD over the first {summary['fvd_num_clips']} clips"
  rows = ["| metric | model | copy first frame |", "|---|---|---|"]
  for key, label in _ROWS:
    if key in summary:
      base = summary.get(f"{key}_baseline")
      base = "-" if base is None else f"{base:.4f}"
      rows.append(f"| {label} | {summary[key]:.4f} | {base} |")
  notes = [
    "SSIM/PSNR flavours: 'standard' = one value per frame with a fixed",
    "data range (averaged over frames); 'reference PL 0.9' = II2V's",
    "pytorch-lightning 0.9 functions, one value per batch of "
    f"{summary.get('batch_size', '?')} clips x T frames with the",
    "batch's data range (PSNR from one pooled MSE).",
  ]
  return head + ".\n\n" + "\n".join(rows) + "\n\n" + " ".join(notes) + "\n"


def plot_curves(summary: dict, path) -> bool:
  """Per-frame curves (model solid, baseline dashed) as one PNG.

  Returns False (and writes nothing) when no curve is in the summary.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  panels = [
    (title, [k for k in keys if f"{k}_per_frame" in summary])
    for title, keys in _PANELS
  ]
  panels = [(title, keys) for title, keys in panels if keys]
  if not panels:
    return False
  fig = Figure(figsize=(4.2 * len(panels), 3.4), layout="constrained")
  FigureCanvasAgg(fig)  # The Agg canvas: no display, no global state.
  for ax, (title, keys) in zip(
    fig.subplots(1, len(panels), squeeze=False)[0], panels
  ):
    for i, key in enumerate(keys):
      curve = summary[f"{key}_per_frame"]
      t = np.arange(1, len(curve) + 1)
      ax.plot(t, curve, "-o", ms=3, color=f"C{i}", label=key)
      base = summary.get(f"{key}_baseline_per_frame")
      if base is not None:
        ax.plot(t, base, "--", color=f"C{i}", label=f"{key} (copy x0)")
    ax.set(title=title, xlabel="frame t")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.savefig(str(path), dpi=100)
  return True


def write_report(workdir: str, summary: dict) -> None:
  """Writes eval.json, eval.md and (if any curve exists) eval_curves.png.

  All three are written beside the old ones first and then moved into
  place (os.replace), so a failure leaves the previous report whole. A
  report without curves removes the previous, now stale, curve plot.
  """
  path = pathlib.Path(workdir)
  tmp = {
    "eval.json": path / ".eval.json.tmp",
    "eval.md": path / ".eval.md.tmp",
    # The temporary name keeps the .png suffix matplotlib goes by.
    "eval_curves.png": path / ".eval_curves.tmp.png",
  }
  try:
    tmp["eval.json"].write_text(json.dumps(summary, indent=2) + "\n")
    tmp["eval.md"].write_text(markdown(summary))
    curves = plot_curves(summary, tmp["eval_curves.png"])
    for name in ("eval.json", "eval.md") + (("eval_curves.png",) * curves):
      os.replace(tmp[name], path / name)
    if not curves:
      (path / "eval_curves.png").unlink(missing_ok=True)
  finally:
    for t in tmp.values():
      t.unlink(missing_ok=True)
