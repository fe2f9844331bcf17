"""Builds Human3.6M from the unpacked Videos_S*.tgz; reuses a build.

  python -m datasets.human36m.build --manual_dir h36m --data_dir data \\
      [--resolution 64|128] [--frame_spacing 8] [--flow_target 5] \\
      [--flow_method dis|raft --flow_weights raft.npz] [--num_workers N]

`--flow_target 5` reproduces the reference's half-horizon poke flow.
Prints examples per split, every skipped file with its reason, disk use,
time, decoded frames/s and the launch.py line that trains on the build.
"""

import sys

from datasets.human36m import human36m_dataset_builder
from datasets.video_common import cli

if __name__ == "__main__":
  sys.exit(cli.main_manual(human36m_dataset_builder.Builder, __doc__))
