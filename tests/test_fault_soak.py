"""A shortened fault soak (tools/bench/fault_soak.py): 4 SIGKILLs, everything checks."""

import json
import subprocess
import sys

import pytest

from tests import testutil

# Four kills, each waiting for its task to come back up, then the run's end.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def test_four_sigkills_lose_nothing(tmp_path, cifar10_dir):
  proc = subprocess.run(
      [sys.executable, "-m", "tools.bench.fault_soak", "--kills=4", "--seed=3",
       "--steps=1500", f"--work_dir={tmp_path / 'soak'}",
       f"--data_dir={cifar10_dir}"],
      cwd=testutil.REPO_ROOT, env=testutil.subprocess_env(), capture_output=True, text=True,
      timeout=testutil.seconds(1400))
  line = [l for l in proc.stdout.splitlines() if l.startswith("SOAK_JSON ")]
  assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
  summary = json.loads(line[0][len("SOAK_JSON "):])
  assert summary["problems"] == [], proc.stdout[-3000:]
  assert proc.returncode == 0
  assert summary["kills"] == 4
  assert summary["final_step"] >= 1500
  assert summary["kept_checkpoints"] >= 1 and summary["metrics_rows"] >= 1
