"""Assigning videos to splits: by ratio, by file lists, by time.

Videos are named as `flow.video_io.discover` names them: the path below the
source directory without extension ("actor1/walk" for actor1/walk.mp4, the
folder path for a folder of frames).
"""

import hashlib
import pathlib

from flow.video_io import VIDEO_EXTS

SPLITS = ("train", "test")


def _rank(name: str, seed: int) -> str:
  return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def ratio_split(names, ratio: float, seed: int = 0) -> dict[str, list[str]]:
  """Whole videos into train / test, about `ratio` of them in train.

  Videos are ordered by a seeded hash of their name and the first
  round(ratio * n) go to train, so the result depends only on the names
  and the seed, and adding a video moves at most one other. With two or
  more videos and 0 < ratio < 1, each split gets at least one.

  Returns:
    {"train": names, "test": names}, each in the input order.
  """
  if not 0.0 <= ratio <= 1.0:
    raise ValueError(f"split ratio must be in [0, 1], got {ratio}")
  names = list(names)
  n = len(names)
  count = round(ratio * n)
  if n >= 2 and 0.0 < ratio < 1.0:
    count = min(max(count, 1), n - 1)
  train = set(sorted(names, key=lambda name: _rank(name, seed))[:count])
  return {
    "train": [name for name in names if name in train],
    "test": [name for name in names if name not in train],
  }


def time_spans(ratio: float) -> dict[str, tuple[float, float]]:
  """Per-video temporal split (the reference's per-video 80/20): the
  first `ratio` of every video's frames train, the rest test."""
  if not 0.0 < ratio < 1.0:
    raise ValueError(f"a time split needs 0 < ratio < 1, got {ratio}")
  return {"train": (0.0, ratio), "test": (ratio, 1.0)}


def entry_name(entry: str) -> str:
  """A split-file line as a video name: posix, no "./", no video ext."""
  path = pathlib.PurePosixPath(entry.strip().replace("\\", "/"))
  if path.suffix.lower() in VIDEO_EXTS:
    path = path.with_suffix("")
  return path.as_posix().removeprefix("./")


def read_list(path) -> list[str]:
  """Video names listed in a file, one per line ('#' comments, blanks
  ignored)."""
  lines = pathlib.Path(path).read_text().splitlines()
  stripped = (line.split("#", 1)[0].strip() for line in lines)
  return [entry_name(line) for line in stripped if line]


def list_split(names, lists: dict[str, list[str]]):
  """Videos into splits by lists of names (e.g. from train.txt).

  With one list, every unlisted video goes to the other split (as the
  reference's iPER "official" split); with lists for every split,
  unlisted videos are left out.

  Args:
    names: the videos found.
    lists: {split: listed names} for some or all of SPLITS.

  Returns:
    ({split: names in input order}, {name: reason} for listed names not
    found and unlisted names left out).

  Raises:
    ValueError: no list, an unknown split, or a name in two lists.
  """
  if not lists or set(lists) - set(SPLITS):
    raise ValueError(f"need lists for some of {SPLITS}, got {sorted(lists)}")
  owner = {}
  for split, listed in lists.items():
    for name in listed:
      if owner.setdefault(name, split) != split:
        raise ValueError(
          f"{name!r} is listed for both {owner[name]} and {split}"
        )
  rest = [s for s in SPLITS if s not in lists]
  names = list(names)
  problems = {
    name: f"listed in {owner[name]}.txt but not found"
    for name in sorted(set(owner) - set(names))
  }
  out = {split: [] for split in SPLITS}
  for name in names:
    split = owner.get(name, rest[0] if len(rest) == 1 else None)
    if split is None:
      problems[name] = "not listed in any split file"
    else:
      out[split].append(name)
  return out, problems
