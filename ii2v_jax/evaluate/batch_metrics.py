"""Per-batch metrics of the evaluation protocol (REFERENCE.md §9).

Every metric compares the predicted frames x_1..x_T with the ground truth
(x_0 excluded), for the model and for the copy-the-first-frame baseline.
The image metrics and the I3D features are jitted with the batch split over
the mesh's `data` axis and replicated outputs (every host reads them); the
flow-based errors run on the host with OpenCV (`tracking`).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ii2v_jax.data import pipeline
from ii2v_jax.evaluate import fvd, ssim, tracking
from ii2v_jax.models import inference
from ii2v_jax.models.inference import to_unit_range
from ii2v_jax.parallel import sharding
from ii2v_jax.pretrained import i3d, lpips

ALL_METRICS = ("lpips", "ssim", "psnr", "fvd", "poke", "joints")
IMAGE_METRICS = ("lpips", "ssim", "psnr")


def parse_metrics(spec) -> tuple[str, ...]:
  """'lpips,fvd' (or a sequence) -> validated names in canonical order."""
  names = spec.split(",") if isinstance(spec, str) else list(spec)
  names = {n.strip() for n in names if n.strip()}
  unknown = names - set(ALL_METRICS)
  if unknown or not names:
    raise ValueError(
      f"unknown or empty metrics {sorted(unknown)}; choose from "
      f"{','.join(ALL_METRICS)}"
    )
  return tuple(m for m in ALL_METRICS if m in names)


def _split_video(video_bt1hwc_u8):
  """uint8 clips -> float x_0 (B,S,S,3), x_1..x_T (B,T,S,S,3), the copy."""
  video = to_unit_range(video_bt1hwc_u8)
  x0, real = video[:, 0], video[:, 1:]
  return x0, real, jnp.broadcast_to(x0[:, None], real.shape)


def _lpips_bt(params, real_bthwc, pred_bthwc, x0_bhwc):
  """(B, T) LPIPS-VGG of the prediction and of the copy baseline.

  One backbone pass over x_1..x_T, the prediction and x_0 alone: the real
  frames' features serve both pairs and the copy's are x_0's, repeated.
  """
  b, t = real_bthwc.shape[:2]
  flat = lambda v: v.reshape((b * t,) + v.shape[2:])
  images = jnp.concatenate([flat(real_bthwc), flat(pred_bthwc), x0_bhwc])
  feats = lpips.lpips_features(params, images, net="vgg")
  part = lambda lo, hi: {k: v[lo:hi] for k, v in feats.items()}
  real, pred = part(0, b * t), part(b * t, 2 * b * t)
  copy = {k: jnp.repeat(v[2 * b * t :], t, axis=0) for k, v in feats.items()}
  dist = lambda other: lpips.lpips_from_features(params, real, other)
  return dist(pred).reshape(b, t), dist(copy).reshape(b, t)


def frame_metrics(lpips_params, video_u8, pred, *, which) -> dict:
  """Per-frame metrics of the model and the baseline.

  Args:
    lpips_params: `lpips.load_lpips_params("vgg")` (None without LPIPS).
    video_u8: (B, T+1, S, S, 3) uint8 clips x_0..x_T.
    pred: (B, T, S, S, 3) predicted x_1..x_T in [-1, 1].
    which: metric names; those of `IMAGE_METRICS` are computed.

  Returns:
    {name: (B, T)} and {name_baseline: (B, T)} for lpips, ssim (standard,
    R = 2 on [-1, 1]) and psnr (standard, dB).
  """
  x0, real, copy = _split_video(video_u8)
  out = {}
  if "lpips" in which:
    out["lpips"], out["lpips_baseline"] = _lpips_bt(
      lpips_params, real, pred, x0
    )
  for suffix, fake in (("", pred), ("_baseline", copy)):
    if "ssim" in which:
      out["ssim" + suffix] = ssim.ssim_per_frame(fake, real)
    if "psnr" in which:
      out["psnr" + suffix] = ssim.psnr_per_frame(fake, real)
  return out


def pl09_metrics(video_u8, pred, count: int, *, which) -> dict:
  """The reference's batch-level SSIM / PSNR of the first `count` clips.

  Returns {name: ()} over all count * T frames and {name + "_t": (T,)}
  over the `count` frames at each step t (REFERENCE §9.4), for ssim_pl09
  and psnr_pl09 of the model and the baseline.
  """
  _, real, copy = _split_video(video_u8[:count])
  out = {}
  fns = {"ssim": ssim.ssim_pl09, "psnr": ssim.psnr_pl09}
  for suffix, fake in (("", pred[:count]), ("_baseline", copy)):
    for name in (n for n in ("ssim", "psnr") if n in which):
      key = f"{name}_pl09{suffix}"
      out[key] = fns[name](fake, real)
      out[key + "_t"] = jax.vmap(fns[name], in_axes=1)(fake, real)
  return out


def fvd_features(i3d_params, video_u8, pred_u8) -> dict:
  """(B, 400) I3D features of x_1..x_T, the prediction and the copies."""
  copy_u8 = jnp.broadcast_to(video_u8[:, :1], pred_u8.shape)
  fn = functools.partial(i3d.video_logits, i3d_params)
  return {
    "real": fn(video_u8[:, 1:]),
    "model": fn(pred_u8),
    "baseline": fn(copy_u8),
  }


def flow_errors(batch: dict, pred_u8: np.ndarray, *, which) -> dict:
  """Host-side poke and joint-tracking errors of each clip (px).

  Args:
    batch: numpy clips with `video` (B, T+1, S, S, 3) uint8, `poke_rc`,
      `poke_uv`, and for "joints" `joints` (B, T+1, J, 2), `num_joints`.
    pred_u8: (B, T, S, S, 3) uint8 predicted frames.
    which: metric names; "poke" and "joints" are computed here.

  Returns:
    poke_epe[_baseline]: (B,) at frame T; joint_epe[_baseline, _real]:
    (B, T) per frame t (mean over the clip's joints); `_real` is the
    estimator's own error on the ground-truth clip.
  """
  out = {}
  for i, video in enumerate(batch["video"]):
    num_steps = len(video) - 1
    steps = {
      "": tracking.step_flows(np.concatenate([video[:1], pred_u8[i]])),
      "_baseline": tracking.static_step_flows(video[0], num_steps),
    }
    if "joints" in which:
      steps["_real"] = tracking.step_flows(video)
    for suffix, flows in steps.items():
      if "poke" in which and suffix != "_real":
        out.setdefault("poke_epe" + suffix, []).append(
          tracking.poke_error(flows, batch["poke_rc"][i], batch["poke_uv"][i])
        )
      if "joints" in which:
        out.setdefault("joint_epe" + suffix, []).append(
          tracking.joint_errors(
            flows, batch["joints"][i], int(batch["num_joints"][i])
          )
        )
  return {k: np.asarray(v, np.float32) for k, v in out.items()}


@dataclasses.dataclass
class BatchMetrics:
  """The jitted, sharded metric programs of one evaluation.

  Each batch is padded (last clip repeated) to `padded`, a multiple of the
  data-axis size, so full and final batches share one program; padded
  clips are dropped from every result.
  """

  mesh: jax.sharding.Mesh
  which: tuple[str, ...]
  padded: int

  def __post_init__(self):
    rep = sharding.replicated(self.mesh)
    bat = sharding.batch_sharding(self.mesh)
    self.batch_sharding, self.replicated = bat, rep
    self.frame_fn = jax.jit(
      functools.partial(frame_metrics, which=self.which),
      in_shardings=(rep, bat, bat),
      out_shardings=rep,
    )
    # `count` (valid clips) is static: one more program for a short batch.
    self.pl09_fn = jax.jit(
      functools.partial(pl09_metrics, which=self.which),
      static_argnums=2,
      in_shardings=(bat, bat),
      out_shardings=rep,
    )
    self.fvd_fn = jax.jit(
      fvd_features, in_shardings=(rep, bat, bat), out_shardings=rep
    )
    # Replicated: the host's flow and FVD buffer read it (on any host).
    self.to_uint8 = jax.jit(
      inference.to_uint8, in_shardings=bat, out_shardings=rep
    )

  def sharded_rollout(self, rollout):
    """rollout(params, x0, poke) -> fn(params, video_u8, poke) -> pred.

    Pins the prediction's sharding (batch over `data`), which the other
    programs' in_shardings expect.
    """
    return jax.jit(
      lambda params, video_u8, poke: rollout(
        params, to_unit_range(video_u8)[:, 0], poke
      ),
      in_shardings=(self.replicated, self.batch_sharding, self.batch_sharding),
      out_shardings=self.batch_sharding,
    )


class FvdSets:
  """I3D features of the real, predicted and copied x_1..x_T of the first
  `limit` clips, computed in full (padded) batches.

  Clips arrive with each evaluation batch and wait on the host until an
  I3D batch is full (or the last one has arrived), so a subset pays I3D
  only for its own clips.
  """

  def __init__(self, fns: BatchMetrics, i3d_params, limit: int):
    self._fns, self._params, self.limit = fns, i3d_params, limit
    self._video, self._pred, self._waiting, self.seen = [], [], 0, 0
    self.feats = {"real": [], "model": [], "baseline": []}

  def add(self, video_u8: np.ndarray, pred_u8: np.ndarray) -> None:
    """Host clips (n, T+1, S, S, 3) and predictions (n, T, S, S, 3)."""
    take = max(0, min(len(video_u8), self.limit - self.seen))
    self.seen += take
    self._video.append(video_u8[:take])
    self._pred.append(pred_u8[:take])
    self._waiting += take
    size = self._fns.padded
    while self._waiting >= size or (self.seen == self.limit and self._waiting):
      self._run(size)

  def _run(self, size: int) -> None:
    video, pred = np.concatenate(self._video), np.concatenate(self._pred)
    count = min(size, len(video))
    batch = pad_batch({"video": video[:count], "pred": pred[:count]}, size)
    bat = self._fns.batch_sharding
    out = self._fns.fvd_fn(
      self._params,
      jax.device_put(batch["video"], bat),
      jax.device_put(batch["pred"], bat),
    )
    for k, v in jax.device_get(out).items():
      self.feats[k].append(np.asarray(v)[:count])
    self._video, self._pred = [video[count:]], [pred[count:]]
    self._waiting = len(video) - count

  def distances(self) -> dict:
    """FVD of the model and of the baseline against the same real set."""
    feats = {k: np.concatenate(v) for k, v in self.feats.items()}
    return {
      "fvd": fvd.frechet_distance(feats["real"], feats["model"]),
      "fvd_baseline": fvd.frechet_distance(feats["real"], feats["baseline"]),
      "fvd_num_clips": len(feats["real"]),
    }


def padded_batch_size(batch_size: int, mesh) -> int:
  """The smallest multiple of the data-axis size >= batch_size."""
  n = mesh.shape["data"]
  return -(-batch_size // n) * n


def pad_batch(batch: dict, size: int) -> dict:
  """Repeats the last clip of every entry until the batch has `size`."""
  pad = size - len(batch["video"])
  return {
    k: np.concatenate([v, np.repeat(v[-1:], pad, 0)]) for k, v in batch.items()
  }


def make_periodic_eval(config, graphdef, mesh):
  """A cheap subset for training logs: LPIPS, SSIM, PSNR on fixed clips.

  Returns `fn(params) -> {"eval/lpips": float, "eval/ssim": ...,
  "eval/psnr": ...}` (standard flavours, mean over clips and frames) on
  `config.eval.train_clips` seeded test clips, or None when
  `config.eval.every` is 0.
  """
  ev = config.eval
  if not ev.every:
    return None
  n, load = pipeline.eval_examples(
    config.data, num_clips=ev.train_clips, seed=ev.seed
  )
  batch = pipeline.stack([load(i) for i in range(n)])
  batch = pad_batch(batch, padded_batch_size(n, mesh))
  fns = BatchMetrics(mesh, IMAGE_METRICS, len(batch["video"]))
  video = jax.device_put(batch["video"], fns.batch_sharding)
  pokes = jax.device_put(batch["poke"], fns.batch_sharding)
  lpips_params = jax.device_put(lpips.load_lpips_params("vgg"), fns.replicated)
  rollout = fns.sharded_rollout(
    inference.make_rollout_fn(graphdef, config.data.num_frames)
  )

  def evaluate(params) -> dict:
    pred = rollout(params, video, pokes)
    out = jax.device_get(fns.frame_fn(lpips_params, video, pred))
    return {f"eval/{k}": float(np.mean(out[k][:n])) for k in IMAGE_METRICS}

  return evaluate
