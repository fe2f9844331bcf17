"""Motion a video shows at given points: chained DIS flow, per frame.

The poke error and the joint-tracking error of `evaluate` both ask where
the content at a point of frame 0 sits in frame t. Like the datasets'
stored flow (`flow.estimate_chained_flow`), this chains DIS flows between
consecutive frames; only the tracked points are carried along, so every
intermediate frame comes for free. At integer pixels the last step equals
`flow.estimate_chained_flow(video)[row, col]`: the same `cv2.remap`
sampling, evaluated at fewer places.
"""

import cv2
import numpy as np

import flow

# The estimator settings of `flow.estimate_chained_flow`'s defaults, which
# evaluation has always used for the poke error.
FLOW_OPTIONS = {"method": "dis", "preset": "fast", "min_size": 256}


def step_flows(video_thw3: np.ndarray) -> np.ndarray:
  """(T, H, W, 2) flows frame t -> t + 1 of a uint8 (T + 1, H, W, 3) clip."""
  video_thw3 = np.asarray(video_thw3)
  return flow.estimate_flow(video_thw3[:-1], video_thw3[1:], **FLOW_OPTIONS)


def static_step_flows(frame_hw3: np.ndarray, num_steps: int) -> np.ndarray:
  """`step_flows` of a clip that repeats one frame: one estimate, reused.

  Every pair of such a clip is (frame, frame), so the T estimates are
  equal and one suffices (the copy-first-frame baseline).
  """
  pair_hw2 = flow.estimate_flow(frame_hw3, frame_hw3, **FLOW_OPTIONS)
  return np.repeat(pair_hw2[None], num_steps, axis=0)


def track_points(steps_thw2: np.ndarray, points_k2: np.ndarray) -> np.ndarray:
  """Displacements of points of frame 0 in every later frame.

  Args:
    steps_thw2: (T, H, W, 2) flows frame t -> t + 1, pixels, (u, v).
    points_k2: (K, 2) start positions (x, y) in pixels of frame 0; pixel
      (row, col) has its centre at (x, y) = (col, row).

  Returns:
    (T, K, 2) float32: row t - 1 is the displacement (u, v) frame 0 ->
    frame t. Each point samples step t bilinearly at its current position
    (clamped to the border), as `flow.compose_flows` does for every pixel.
  """
  points_k2 = np.asarray(points_k2, np.float32)
  start_x, start_y = points_k2[None, :, 0], points_k2[None, :, 1]
  total_1k2 = np.zeros((1, len(points_k2), 2), np.float32)
  out = []
  for step_hw2 in np.asarray(steps_thw2, np.float32):
    total_1k2 = total_1k2 + cv2.remap(
      step_hw2,
      start_x + total_1k2[..., 0],
      start_y + total_1k2[..., 1],
      cv2.INTER_LINEAR,
      borderMode=cv2.BORDER_REPLICATE,
    )
    out.append(total_1k2[0])
  return np.stack(out)


def poke_error(steps_thw2, poke_rc, poke_uv) -> float:
  """End-point error (px) at the poked pixel, frame 0 -> frame T.

  Args:
    steps_thw2: (T, H, W, 2) step flows of the judged clip.
    poke_rc: (2,) int (row, col) of the poke.
    poke_uv: (2,) the poke vector (u, v), the target displacement.
  """
  point_12 = np.asarray([[poke_rc[1], poke_rc[0]]], np.float32)
  got_2 = track_points(steps_thw2, point_12)[-1, 0]
  return float(np.linalg.norm(got_2 - np.asarray(poke_uv)))


def joint_errors(steps_thw2, joints_tj2, num_joints: int) -> np.ndarray:
  """Per-frame end-point error (px) of the tracked joints, mean over joints.

  Args:
    steps_thw2: (T, H, W, 2) step flows of the judged clip.
    joints_tj2: (T + 1, J_max, 2) ground-truth joint positions (x, y),
      pixels; rows past `num_joints` are padding.
    num_joints: how many joints the object has (>= 1).

  Returns:
    (T,) float32: for t = 1..T, the mean over joints of |shown - true|,
    shown = the displacement tracked from the joint's frame-0 position,
    true = joints[t] - joints[0].
  """
  joints_tj2 = np.asarray(joints_tj2, np.float32)[:, :num_joints]
  shown_tj2 = track_points(steps_thw2, joints_tj2[0])
  true_tj2 = joints_tj2[1:] - joints_tj2[:1]
  return np.linalg.norm(shown_tj2 - true_tj2, axis=-1).mean(axis=-1)
