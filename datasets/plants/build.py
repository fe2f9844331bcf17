"""Builds Poking Plants from its unpacked videos; a finished build is reused.

  python -m datasets.plants.build --manual_dir plants --data_dir data \\
      [--resolution 64|128] [--exclude_object_8 true|false] \\
      [--frame_spacing 2] [--flow_method dis|raft --flow_weights raft.npz] \\
      [--num_workers N]

Prints examples per split, every skipped file with its reason, disk use,
time, decoded frames/s and the launch.py line that trains on the build.
"""

import sys

from datasets.plants import plants_dataset_builder
from datasets.video_common import cli

if __name__ == "__main__":
  sys.exit(cli.main_manual(plants_dataset_builder.Builder, __doc__))
