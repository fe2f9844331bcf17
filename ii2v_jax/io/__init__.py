"""Files of a workdir: orbax checkpoints, the resolved config, videos.

`checkpoint` saves and restores the train state with its data-iterator
state, writes and reads `config.json`, and loads the newest model for
sampling and evaluation; `video_io` writes MP4, GIF and strip PNGs; `logs`
sends library INFO logs to a file in the workdir. May import `models`.
"""
