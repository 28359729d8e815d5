"""tools/bench/measure_throughput.py: which log lines count, and the arithmetic."""

import json
import sys

import pytest

from tests.testutil import seconds
from tools.bench import measure_throughput

FAKE_RUN = """
import time
print("[chief:0] I1126 hooks.py:265] loss = 2.5, step = 0", flush=True)
print("[worker:0] I1126 hooks.py:263] loss = 2.4, step = 12 (1.0 sec)", flush=True)
print("[chief:0] I1126 hooks.py:263] loss = 2.3, step = 10 (1.0 sec)", flush=True)
time.sleep(0.5)
print("[chief:0] I1126 hooks.py:263] loss = 2.1e-01, step = 50 (1.0 sec)", flush=True)
"""


def test_measures_the_chief_between_step_lines(capsys):
  code = measure_throughput.main(["--batch_size=128", "--", sys.executable,
                                  "-c", FAKE_RUN])
  assert code == 0
  out = capsys.readouterr().out.splitlines()
  assert out[0].startswith("[chief:0]")  # The run's output passes through.
  result = json.loads(out[-1])
  assert result["steps"] == 40  # Chief's step 10 to 50; worker lines ignored.
  assert 0.4 < result["wall_secs"] < seconds(5)
  assert result["examples_per_sec"] == pytest.approx(
      128 * 40 / result["wall_secs"], rel=0.02)
  assert result["cores_used"] < 0.5  # It slept.
  assert result["exit"] == 0


def test_single_process_lines_count_and_too_few_lines_fail(capsys):
  line = "I1126 hooks.py:263] loss = 1.0, step = {}"
  script = ";".join(f"print({line.format(s)!r})" for s in (10, 20))
  assert measure_throughput.main(["--batch_size=8", "--", sys.executable, "-c",
                                  script]) == 0
  assert json.loads(capsys.readouterr().out.splitlines()[-1])["steps"] == 10
  assert measure_throughput.main(["--batch_size=8", "--", sys.executable, "-c",
                                  "print('nothing')"]) == 1
  assert "fewer than two step lines" in capsys.readouterr().err
