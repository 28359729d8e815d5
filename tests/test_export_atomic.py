"""Exports are atomic: SIGKILL at several points of a real `--mode=export`
leaves no numbered folder that a server or Predictor would load, and the next
export removes what the killed one left."""

import glob
import os
import signal
import subprocess

import numpy as np
import pytest

from estimator_cifar import Predictor
from estimator_cifar.engine import export_dirs, modes
from tests.testutil import run_cli, seconds, start_cli, tiny_config, wait_until

# Files that appear while an export is written: each is a point to kill the
# exporting process at. The staging folder comes last: it appears seconds
# before the export ends, so that kill always lands and leaves a staging
# folder for the final export to clean up (a later kill point can be passed
# by an export that finishes between two polls, and the next export removes
# what the earlier kills left).
KILL_POINTS = [
    f"{export_dirs.STAGING_PREFIX}*/*/variables",          # SavedModel started.
    f"{export_dirs.STAGING_PREFIX}*/*/saved_model.pb",     # SavedModel written.
    f"{export_dirs.STAGING_PREFIX}*",                      # Staging made.
]


def complete(export_path: str) -> bool:
  return all(os.path.exists(os.path.join(export_path, name)) for name in
             ("saved_model.pb", "variables", export_dirs.INFO_FILE))


@pytest.mark.slow
def test_sigkill_mid_export_leaves_no_model_and_the_next_export_cleans_up(
    tmp_path, cifar10_dir):
  model_dir = str(tmp_path / "run")
  modes.run(tiny_config("train.steps=5"), model_dir, "train", cifar10_dir)
  export_base = os.path.join(model_dir, "export")
  landed = 0
  for point in KILL_POINTS:
    proc = start_cli("--mode=export", f"--model_dir={model_dir}",
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: glob.glob(os.path.join(export_base, point)) or
               proc.poll() is not None, 120, interval=0.002, message=point)
    if proc.poll() is None:
      proc.send_signal(signal.SIGKILL)
      landed += 1
    proc.wait(seconds(30))
    # Whatever finished is whole; nothing half-written has a number.
    numbered = [p for p in glob.glob(os.path.join(export_base, "*"))
                if os.path.basename(p).isdigit()]
    assert all(complete(path) for path in numbered), numbered
  assert landed >= 2, "the exports finished before the kills: nothing tested"
  assert glob.glob(os.path.join(export_base, export_dirs.STAGING_PREFIX + "*"))

  done = run_cli("--mode=export", f"--model_dir={model_dir}", timeout=120)
  assert done.returncode == 0, done.stderr[-2000:]
  assert not glob.glob(os.path.join(export_base, export_dirs.STAGING_PREFIX + "*"))
  assert all(complete(p) for p in export_dirs.finished_exports(export_base))
  out = Predictor(model_dir)(np.zeros([2, 32, 32, 3], np.uint8))
  assert out.probabilities.shape == (2, 10)
