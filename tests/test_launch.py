"""launch.py as a user runs it: a quiet console, library logs in the workdir."""

import re
import subprocess


def launch(launch_argv, workdir, *extra) -> list[str]:
  argv = launch_argv(workdir, "--config.train.progress_bar=True", *extra)
  done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  text = (done.stdout + done.stderr).replace("\r", "\n")
  # tqdm redraws its bar in place; everything else is a console line.
  bar = re.compile(r"\d+/\d+ \[[\d:<?]+")
  return [line for line in text.splitlines() if line and not bar.search(line)]


def test_console_shows_summary_and_bar_logs_go_to_file(launch_argv, tmp_path):
  lines = launch(launch_argv, tmp_path / "w")
  log = tmp_path / "w" / "logs" / "train.log"
  assert len(lines) <= 8, "\n".join(lines)
  assert any(str(log) in line for line in lines)
  assert any(line.startswith("params:") for line in lines)
  assert any(line.startswith("done: step 4") for line in lines)
  info = re.compile(r"^I\d{4} ")  # absl's INFO record prefix
  assert not [line for line in lines if info.match(line)]
  # orbax's INFO records are kept, in the file.
  assert "Finished saving checkpoint" in log.read_text()

  # --verbosity brings them back to the console (a resume: nothing to train).
  loud = launch(launch_argv, tmp_path / "w", "--verbosity=0")
  assert any(info.match(line) for line in loud), "\n".join(loud)
