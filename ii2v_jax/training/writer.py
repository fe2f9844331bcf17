"""TensorBoard event files (tensorboardX; no TensorFlow) written by host 0."""

import pathlib

import jax
import numpy as np
import tqdm


class Writer:
  """Scalars, text and frame grids; a no-op on hosts other than 0."""

  def __init__(self, workdir: str):
    self._tb = None
    if jax.process_index() == 0:
      from tensorboardX import SummaryWriter

      self._tb = SummaryWriter(str(pathlib.Path(workdir) / "tb"))

  def scalars(self, step: int, metrics: dict) -> None:
    if self._tb is None:
      return
    for k, v in metrics.items():
      if np.ndim(v) == 0:
        self._tb.add_scalar(k, float(v), step)
    self._tb.flush()

  def text(self, step: int, tag: str, text: str) -> None:
    if self._tb is not None:
      self._tb.add_text(tag, f"```\n{text}\n```", step)

  def video_grid(self, step, tag, first_b1hwc, video_bthwc) -> None:
    """One image: a row per clip, x_0 then the T frames left to right."""
    if self._tb is None:
      return
    clips = np.concatenate([first_b1hwc, video_bthwc], axis=1)
    rows = [np.concatenate(list(c), axis=1) for c in clips]
    self._tb.add_image(
      tag, np.concatenate(rows, axis=0), step, dataformats="HWC"
    )
    self._tb.flush()

  def summary(self, line: str) -> None:
    """A line for the console that does not break the progress bar."""
    if jax.process_index() == 0:
      tqdm.tqdm.write(line)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
