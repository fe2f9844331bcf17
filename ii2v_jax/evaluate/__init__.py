"""Evaluation with the paper's protocol; `python -m ii2v_jax.evaluate`.

`protocol` runs a workdir's model over a split and writes the report,
`batch_metrics` computes LPIPS, SSIM/PSNR, FVD features and flow errors per
batch, `fvd`, `ssim` and `tracking` are the metric definitions, `report`
writes eval.json, eval.md and the curves. May import models, pretrained,
data, parallel and io; never training.
"""
