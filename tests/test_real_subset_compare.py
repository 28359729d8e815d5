"""tools/bench/real_subset_compare.py: the comparison arithmetic, and one tiny run."""

import json
import subprocess
import sys

from tests import testutil
from tests.testutil import REPO_ROOT
from tools.bench import real_subset_compare as compare_lib

CURVES = {  # [seconds, step, accuracy]
    "package": [[10, 5, 0.30], [20, 10, 0.55], [30, 15, 0.70]],
    "minimal": [[12, 5, 0.25], [24, 10, 0.40], [31, 12, 0.50]],
    "keras": [[9, 4, 0.20], [21, 9, 0.60], [29, 13, 0.58]],
}


def test_accuracy_at_equal_times_and_time_to_each_peers_best():
  report = compare_lib.compare(CURVES, budget=30, marks=3)
  assert report["times"] == [10, 20, 30]
  assert report["accuracy_at_time"]["package"] == [0.30, 0.55, 0.70]
  # Nothing saved by 10 s: no accuracy yet. The last mark is the final one.
  assert report["accuracy_at_time"]["minimal"] == [None, 0.25, 0.50]
  assert report["accuracy_at_time"]["keras"] == [0.20, 0.20, 0.58]
  minimal = report["time_to_peer_best"]["minimal"]
  assert (minimal["target"], minimal["package_secs"], minimal["peer_secs"]) == \
      (0.50, 20, 31)
  assert minimal["package_faster"]
  keras = report["time_to_peer_best"]["keras"]  # Best 0.60, not the last 0.58.
  assert (keras["target"], keras["package_secs"], keras["peer_secs"]) == \
      (0.60, 30, 21)
  assert not keras["package_faster"]
  assert report["package_highest_at_budget"]


def test_a_target_the_package_never_reaches():
  curves = {"package": [[5, 1, 0.3]], "keras": [[5, 1, 0.4]]}
  report = compare_lib.compare(curves, budget=5, marks=1)
  assert report["time_to_peer_best"]["keras"]["package_secs"] is None
  assert not report["time_to_peer_best"]["keras"]["package_faster"]
  assert not report["package_highest_at_budget"]
  assert "not reached" in compare_lib.format_report(report, curves)


@testutil.multi_process
def test_three_contenders_on_fake_data(cifar10_dir, tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "tools.bench.real_subset_compare",
       f"--data_dir={cifar10_dir}", "--budget_secs=4", "--points=2",
       f"--work_dir={tmp_path}",
       "--params_override=model.name=tiny,eval.batch_size=50"],
      cwd=REPO_ROOT, env=testutil.subprocess_env(), capture_output=True, text=True,
      timeout=testutil.seconds(testutil.MULTI_PROCESS_TIMEOUT_SECS))
  assert proc.returncode == 0, proc.stderr[-2000:]
  report = json.loads(proc.stdout.strip().splitlines()[-1])
  assert set(report["curves"]) == {"package", "minimal", "keras"}
  for name, points in report["curves"].items():
    assert points, (name, report["notes"])
    times = [t for t, _, _ in points]
    assert times == sorted(times)
    assert all(0.0 <= acc <= 1.0 for _, _, acc in points)
  # Every contender trained (a loaded machine decides how far, so no
  # accuracy threshold), and the report is the comparison of its curves.
  assert all(points[-1][1] > 0 for points in report["curves"].values())
  expected = compare_lib.compare(report["curves"], 4, 2)
  for key in ("accuracy_at_time", "final_accuracy", "time_to_peer_best"):
    assert report[key] == expected[key]
  assert set(report["time_to_peer_best"]) == {"minimal", "keras"}
  assert any("steps/s in the probe" in note for note in report["notes"])
  assert "accuracy at elapsed training time" in proc.stdout
