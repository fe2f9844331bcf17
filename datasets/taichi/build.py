"""Builds TaiChi-HD from the FOMM download; a finished build is reused.

  python -m datasets.taichi.build --manual_dir taichi --data_dir data \\
      [--resolution 64|128] [--frame_spacing 2] [--fg_mask grabcut|none] \\
      [--flow_method dis|raft --flow_weights raft.npz] [--num_workers N]

Prints examples per split, every skipped file with its reason, disk use,
time, decoded frames/s and the launch.py line that trains on the build.
"""

import sys

from datasets.taichi import taichi_dataset_builder
from datasets.video_common import cli

if __name__ == "__main__":
  sys.exit(cli.main_manual(taichi_dataset_builder.Builder, __doc__))
