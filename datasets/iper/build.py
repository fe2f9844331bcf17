"""Builds iPER from iPER_1024_video_release + train.txt; reuses a build.

  python -m datasets.iper.build --manual_dir iper --data_dir data \\
      [--resolution 64|128] [--frame_spacing 1] [--fg_mask grabcut|none] \\
      [--flow_method dis|raft --flow_weights raft.npz] [--num_workers N]

Prints examples per split, every skipped file with its reason, disk use,
time, decoded frames/s and the launch.py line that trains on the build.
"""

import sys

from datasets.iper import iper_dataset_builder
from datasets.video_common import cli

if __name__ == "__main__":
  sys.exit(cli.main_manual(iper_dataset_builder.Builder, __doc__))
