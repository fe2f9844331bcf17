"""Kinematics and poke dynamics of articulated objects.

Units: lengths in frame widths (normalized), time in clip durations (frame
n of a clip with T+1 frames is at t = n / T), unit areal density, so an
impulse is in area * frame-width / clip.

Model: each joint angle is a damped spring about its rest angle. A poke is
an impulse F at material point P of link k, applied just after t = 0. Every
joint j on the path from the fixed base to link k receives the angular
impulse (P - J_j) x F, which changes its angular velocity by that amount over
I_j, the inertia of the subtree carried by joint j (each joint responds as if
the others were locked). Joints off that path are untouched, so poking a
leaf swings its branch while poking the stem moves everything above.
"""

import numpy as np

from datasets.articulated_pokes.objects import ArticulatedObject


def rotation(angle: np.ndarray) -> np.ndarray:
  """(..., 2, 2) matrices rotating (x, y) by `angle` (radians)."""
  c, s = np.cos(angle), np.sin(angle)
  return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def forward_kinematics(
  obj: ArticulatedObject, theta_tl: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Link poses from joint deflections.

  Args:
    obj: the object.
    theta_tl: (T, L) joint angles minus their rest angles, radians.

  Returns:
    angles_tl: (T, L) absolute link directions, radians.
    joints_tl2: (T, L, 2) joint positions (x, y), normalized units.
  """
  theta_tl = np.asarray(theta_tl, np.float64)
  angles_tl = np.zeros_like(theta_tl)
  joints_tl2 = np.zeros(theta_tl.shape + (2,))
  for i, p in enumerate(obj.parent):
    if p < 0:
      angles_tl[:, i] = obj.rest_angle[i] + theta_tl[:, i]
      joints_tl2[:, i] = obj.anchor_l2[i]
      continue
    angles_tl[:, i] = angles_tl[:, p] + obj.rest_angle[i] + theta_tl[:, i]
    reach = obj.attach[i] * obj.length[p]
    joints_tl2[:, i, 0] = joints_tl2[:, p, 0] + reach * np.cos(angles_tl[:, p])
    joints_tl2[:, i, 1] = joints_tl2[:, p, 1] + reach * np.sin(angles_tl[:, p])
  return angles_tl, joints_tl2


def to_world(angle, joint_2, local_k2: np.ndarray) -> np.ndarray:
  """(K, 2) link-local points (along, across) -> world (x, y)."""
  return local_k2 @ rotation(angle).T + joint_2


def to_local(angle, joint_2, world_k2: np.ndarray) -> np.ndarray:
  """(K, 2) world points (x, y) -> link-local (along, across)."""
  return (world_k2 - joint_2) @ rotation(angle)


def path_to_base(obj: ArticulatedObject, link: int) -> list[int]:
  """Links from `link` down to its root, `link` first."""
  path = [link]
  while obj.parent[path[-1]] >= 0:
    path.append(int(obj.parent[path[-1]]))
  return path


def subtree_inertia(obj: ArticulatedObject) -> np.ndarray:
  """(L,) moment of inertia about each joint of the links it carries, at rest.

  Links are rods of mass length * width (unit density).
  """
  angles_1l, joints_1l2 = forward_kinematics(obj, np.zeros((1, obj.num_links)))
  direction_l2 = np.stack([np.cos(angles_1l[0]), np.sin(angles_1l[0])], -1)
  center_l2 = joints_1l2[0] + 0.5 * obj.length[:, None] * direction_l2
  mass = obj.length * obj.width
  own = mass * (obj.length**2 + obj.width**2) / 12
  inertia = np.zeros(obj.num_links)
  for i in range(obj.num_links):
    for j in path_to_base(obj, i):
      arm = center_l2[i] - joints_1l2[0, j]
      inertia[j] += own[i] + mass[i] * arm @ arm
  return inertia


def poke_velocity(
  obj: ArticulatedObject, link: int, point_2: np.ndarray, impulse_2
) -> np.ndarray:
  """(L,) joint angular velocities (rad / clip) right after a poke at rest.

  Args:
    obj: the object, at rest.
    link: index of the poked link.
    point_2: (x, y) where the impulse acts (on `link`), normalized units.
    impulse_2: (Fx, Fy) impulse.
  """
  _, joints_1l2 = forward_kinematics(obj, np.zeros((1, obj.num_links)))
  inertia = subtree_inertia(obj)
  velocity = np.zeros(obj.num_links)
  for j in path_to_base(obj, link):
    rx, ry = np.asarray(point_2) - joints_1l2[0, j]
    # z-component of r x F; positive turns +x towards +y like the angles.
    velocity[j] = (rx * impulse_2[1] - ry * impulse_2[0]) / inertia[j]
  return velocity


def integrate(
  obj: ArticulatedObject,
  velocity_l: np.ndarray,
  num_frames: int,
  substeps: int = 8,
) -> np.ndarray:
  """Free damped-spring motion from rest angles with initial velocities.

  Semi-implicit Euler with `substeps` steps per frame.

  Args:
    obj: the object (supplies omega, zeta per joint).
    velocity_l: (L,) initial joint angular velocities, radians per clip.
    num_frames: frames of the clip, T + 1 (frame 0 = rest state).
    substeps: integration steps per frame interval.

  Returns:
    (T + 1, L) joint deflections theta (radians), theta[0] = 0.
  """
  dt = 1.0 / ((num_frames - 1) * substeps)
  k, c = obj.omega**2, 2 * obj.zeta * obj.omega
  theta, vel = np.zeros(obj.num_links), np.asarray(velocity_l, np.float64)
  theta_tl = np.zeros((num_frames, obj.num_links))
  for n in range(1, num_frames):
    for _ in range(substeps):
      vel = vel + dt * (-k * theta - c * vel)
      theta = theta + dt * vel
    theta_tl[n] = theta
  return theta_tl


def point_track(
  obj: ArticulatedObject, theta_tl: np.ndarray, link: int, local_2
) -> np.ndarray:
  """(T, 2) world positions of a material point of `link` over a clip."""
  angles_tl, joints_tl2 = forward_kinematics(obj, theta_tl)
  rot_t22 = rotation(angles_tl[:, link])
  return rot_t22 @ np.asarray(local_2, np.float64) + joints_tl2[:, link]


def sample_poke_site(
  rng: np.random.Generator, obj: ArticulatedObject
) -> tuple[int, np.ndarray, np.ndarray]:
  """Random poke site and direction on an object at rest.

  Returns:
    link: poked link, drawn with probability proportional to its area times
      its squared distance from the fixed base: like pokes taken where the
      flow is large, most land on parts that can move far.
    local_2: (along, across) material point on the link's axis.
    direction_2: unit impulse direction, within ~35 deg of the link normal.
  """
  angles_1l, joints_1l2 = forward_kinematics(obj, np.zeros((1, obj.num_links)))
  roots = [path_to_base(obj, i)[-1] for i in range(obj.num_links)]
  direction_l2 = np.stack([np.cos(angles_1l[0]), np.sin(angles_1l[0])], -1)
  middle_l2 = joints_1l2[0] + 0.5 * obj.length[:, None] * direction_l2
  reach = np.linalg.norm(middle_l2 - obj.anchor_l2[roots], axis=-1)
  weight = obj.length * obj.width * reach**2
  link = int(rng.choice(obj.num_links, p=weight / weight.sum()))
  local_2 = np.array([rng.uniform(0.4, 0.95) * obj.length[link], 0.0])
  normal = angles_1l[0, link] + rng.choice([-1.0, 1.0]) * np.pi / 2
  heading = normal + rng.uniform(-0.6, 0.6)
  return link, local_2, np.array([np.cos(heading), np.sin(heading)])


def max_travel(obj: ArticulatedObject, theta_tl: np.ndarray) -> float:
  """Largest distance any joint or link tip gets from its rest position."""
  angles_tl, joints_tl2 = forward_kinematics(obj, theta_tl)
  direction_tl2 = np.stack([np.cos(angles_tl), np.sin(angles_tl)], -1)
  tips_tl2 = joints_tl2 + obj.length[:, None] * direction_tl2
  points_tk2 = np.concatenate([joints_tl2, tips_tl2], axis=1)
  return float(np.linalg.norm(points_tk2 - points_tk2[:1], axis=-1).max())


def scaled_poke(
  obj: ArticulatedObject,
  link: int,
  local_2: np.ndarray,
  direction_2: np.ndarray,
  target: float,
  num_frames: int,
  *,
  max_angle: float = 1.0,
  max_reach: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
  """Impulse whose poked point moves `target` from frame 0 to frame T.

  Joint angles are linear in the impulse, so one unit-impulse simulation is
  rescaled. The scale is capped so that no joint turns more than
  `max_angle` (radians) and no joint or tip travels more than `max_reach`
  (normalized units) during the clip; pokes near the base then move less.

  Returns:
    impulse_2: (2,) the impulse (simulation units).
    theta_tl: (T + 1, L) joint deflections of the clip, radians.
  """
  track = lambda th: point_track(obj, th, link, local_2)
  point_2 = track(np.zeros((1, obj.num_links)))[0]
  unit_tl = integrate(
    obj, poke_velocity(obj, link, point_2, direction_2), num_frames
  )
  peak = np.abs(unit_tl).max()
  if peak == 0:
    return np.zeros(2), unit_tl
  scale = target / peak
  for _ in range(4):  # Fixed point on the mildly nonlinear displacements.
    moved = np.linalg.norm(track(scale * unit_tl[-1:])[0] - point_2)
    reach = max_travel(obj, scale * unit_tl)
    scale *= min(target / max(moved, 1e-9), max_reach / max(reach, 1e-9))
    scale = min(scale, max_angle / peak)
  return scale * direction_2, scale * unit_tl
