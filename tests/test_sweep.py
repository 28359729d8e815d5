"""Tests for tools.sweep: naming, grid, skipping, failures, resume."""

import csv
import glob
import json
import os
import shutil
import signal
import subprocess

import pytest

from estimator_cifar import config as config_lib
from estimator_cifar import rundir
from estimator_cifar.rundir import metrics_log, run_record
from tests import testutil
from tools import sweep

# Every point: the tiny model, 4 steps, summaries every 2 steps (for the plot),
# evaluation with the moving average.
COMMON = [",".join(testutil.TINY + ["train.steps=4", "summary.save_steps=2"])]
GRID = ["optimizer.learning_rate=0.05,0.1", "train.weight_decay=1e-4,5e-4"]
NAMES = ["optimizer.learning_rate=0.05__train.weight_decay=0.0001",
         "optimizer.learning_rate=0.05__train.weight_decay=0.0005",
         "optimizer.learning_rate=0.1__train.weight_decay=0.0001",
         "optimizer.learning_rate=0.1__train.weight_decay=0.0005"]


def _cfg():
  return config_lib.load_experiment("resnet_sgd")


# ------------------------------------------------------------ names and grid

def test_point_names_are_canonical_and_ordered(tmp_path):
  grid = sweep.parse_grid(["optimizer.learning_rate=.05,0.1,1e-1",
                           "train.weight_decay=1e-4,5E-4"], _cfg())
  assert grid == [("optimizer.learning_rate", ["0.05", "0.1"]),
                  ("train.weight_decay", ["0.0001", "0.0005"])]
  points = sweep.make_points(grid, str(tmp_path))
  assert [p.name for p in points] == NAMES  # First grid key varies slowest.
  assert points[1].overrides == ("optimizer.learning_rate=0.05",
                                 "train.weight_decay=0.0005")
  assert points[1].model_dir == os.path.join(str(tmp_path), NAMES[1])
  assert sweep.make_points([], str(tmp_path))[0].name == "base"


def test_point_names_typed_lists_bools_and_bad_values():
  grid = sweep.parse_grid(["ema.eval_with_ema=True,no",
                           "schedule.boundaries_epochs=[91,136],[60.0,120]",
                           "train.steps=100,ten"], _cfg())
  assert grid == [("ema.eval_with_ema", ["true", "false"]),
                  ("schedule.boundaries_epochs", ["[91.0,136.0]",
                                                  "[60.0,120.0]"]),
                  ("train.steps", ["100", "ten"])]  # Kept: that point fails.
  # Canonical values parse back to the same config value.
  cfg = config_lib.apply_overrides(
      _cfg(), ["schedule.boundaries_epochs=[91.0,136.0]"])
  assert cfg.schedule.boundaries_epochs == [91.0, 136.0]
  assert sweep.point_name(["schedule.boundaries_epochs=[91.0,136.0]",
                           "ema.eval_with_ema=true"]) == (
                               "schedule.boundaries_epochs=91.0,136.0__"
                               "ema.eval_with_ema=true")


def test_point_names_are_safe_distinct_and_stable():
  slash = sweep.point_name(["data.tfds_dir=a/b"])
  under = sweep.point_name(["data.tfds_dir=a_b"])
  assert under == "data.tfds_dir=a_b"
  assert slash.startswith("data.tfds_dir=a_b-") and slash != under
  assert "/" not in slash and " " not in sweep.point_name(["name=a b"])
  assert sweep.point_name(["name=.."]) != "name=.."  # No '..' component.
  assert slash == sweep.point_name(["data.tfds_dir=a/b"])  # Stable.
  long_a = sweep.point_name([f"description={'x' * 300}a"])
  long_b = sweep.point_name([f"description={'x' * 300}b"])
  assert len(long_a) <= sweep.MAX_NAME_CHARS and long_a != long_b


@pytest.mark.parametrize("specs, message", [
    (["optimizer.learnin_rate=0.1"], "unknown config key"),
    (["train.steps"], "is not KEY=VALUE"),
    (["train.steps=1", "train.steps=2"], "twice"),
    (["train.steps=,"], "no values"),
])
def test_parse_grid_rejects(specs, message):
  with pytest.raises(sweep.SweepError, match=message):
    sweep.parse_grid(specs, _cfg())


def test_grid_key_also_in_set_is_rejected(tmp_path):
  with pytest.raises(sweep.SweepError,
                     match="both in --params_override and --grid"):
    sweep.sweep("resnet_sgd", ["train.steps=1,2"], str(tmp_path),
                ["model.name=tiny,train.steps=3"], dry_run=True, say=print)


# ------------------------------------------------------- state and error line

def _finished_record(model_dir, cfg, step):
  os.makedirs(model_dir, exist_ok=True)
  with open(run_record.path(model_dir), "w") as f:
    json.dump({"status": "finished", "final_step": step,
               "config": json.loads(cfg.to_json())}, f)


def test_point_state(tmp_path):
  point = sweep.make_points([("train.steps", ["4"])], str(tmp_path))[0]
  cfg = sweep.point_config("resnet_sgd", COMMON, point)
  assert sweep.point_state(point, cfg)[0] == "new"
  _finished_record(point.model_dir, cfg, 4)
  assert sweep.point_state(point, cfg) == ("finished", "finished at step 4")
  _finished_record(point.model_dir, cfg, 3)  # Final step not reached.
  assert sweep.point_state(point, cfg)[0] == "resume"
  other = testutil.tiny_config("train.steps=4", "optimizer.learning_rate=0.3")
  _finished_record(point.model_dir, other, 4)  # Config changed since.
  assert sweep.point_state(point, cfg) == ("resume",
                                           "finished with another config")
  with open(run_record.path(point.model_dir), "w") as f:
    json.dump({"status": "running"}, f)
  assert sweep.point_state(point, cfg) == ("resume",
                                           "last status running or killed")


def test_error_line(tmp_path):
  log = tmp_path / "sweep.log"
  log.write_text("==== old attempt\nerror: old problem\n")
  offset = log.stat().st_size
  with open(log, "a") as f:
    f.write("I1126 info line\nerror: Bad value for train.steps: 'x'\n"
            "I1126 flushed log line\n")
  assert sweep.error_line(str(log), offset) == (
      "error: Bad value for train.steps: 'x'")
  log.write_text("Traceback (most recent call last):\n  File \"x\"\n"
                 "ValueError: boom\n\n")
  assert sweep.error_line(str(log)) == "ValueError: boom"
  assert sweep.error_line(str(tmp_path / "missing.log")) is None


def test_dry_run_lists_points_and_writes_nothing(tmp_path):
  root = str(tmp_path / "sweep")
  lines = []
  status = sweep.sweep("resnet_sgd", GRID + ["optimizer.name=sgd,bogus"], root,
                       COMMON, dry_run=True, say=lines.append)
  assert status == 0 and not os.path.exists(root)
  assert lines[0] == f"8 points under {root}"
  assert sum(line.startswith("run ") for line in lines) == 8
  bogus = [line for line in lines if "optimizer.name=bogus" in line]
  assert len(bogus) == 4
  assert all("invalid: optimizer.name='bogus' is not one of" in line
             for line in bogus)


def test_a_grid_past_max_points_is_refused_before_anything_runs(tmp_path):
  root = str(tmp_path / "sweep")
  with pytest.raises(sweep.SweepError, match="--max_points=3 to run them all"):
    sweep.sweep("resnet_sgd", ["train.seed=1,2,3"], root, COMMON, max_points=2,
                say=lambda line: None)
  assert not os.path.exists(root)
  # From the command line, the default limit holds without any flag.
  seeds = ",".join(str(s) for s in range(1, sweep.DEFAULT_MAX_POINTS + 2))
  proc = testutil.run_tool("sweep", "--experiment=resnet_sgd", f"--root={root}",
                           f"--grid=train.seed={seeds}")
  line = testutil.error_line(proc.returncode, proc.stderr)
  assert f"{sweep.DEFAULT_MAX_POINTS + 1} points" in line and "--max_points=" in line
  assert not os.path.exists(root)


# ------------------------------------------------------------- real sweeps

@pytest.mark.slow
def test_failed_point_is_reported_and_the_sweep_goes_on(tmp_path, cifar10_dir):
  root = str(tmp_path / "sweep")
  lines = []
  status = sweep.sweep("resnet_sgd", ["optimizer.name=sgd,bogus"], root, COMMON,
                       parallel=2, data_dir=cifar10_dir, say=lines.append)
  assert status == 1
  good, bad = (os.path.join(root, f"optimizer.name={value}")
               for value in ("sgd", "bogus"))
  assert run_record.read(good)["status"] == "finished"
  assert metrics_log.read(good)[-1]["global_step"] == 4
  expected = "error: optimizer.name='bogus' is not one of:"
  failed = [line for line in lines if line.startswith("FAILED")]
  assert len(failed) == 1 and "optimizer.name=bogus" in failed[0]
  assert expected in failed[0] and "exit 2" in failed[0]
  assert lines[-2] == "1 finished, 0 skipped (finished before), 1 failed"
  with open(os.path.join(root, sweep.STATE_FILE)) as f:
    points = {p["name"]: p for p in json.load(f)["points"]}
  assert points["optimizer.name=sgd"]["status"] == "finished"
  assert points["optimizer.name=bogus"]["status"] == "failed"
  assert points["optimizer.name=bogus"]["error"].startswith(expected)
  with open(os.path.join(root, sweep.RESULTS_MD)) as f:
    markdown = f.read()
  assert "| optimizer.name=sgd " in markdown
  assert f"- `optimizer.name=bogus`: {expected}" in markdown
  assert os.path.exists(os.path.join(bad, sweep.LOG_FILE))


def _sweep_cmd(root, data_dir):
  cmd = testutil.tool_command(
      "sweep", "--experiment=resnet_sgd", f"--root={root}",
      f"--data_dir={data_dir}", "--parallel", "2")
  for spec in GRID:
    cmd += ["--grid", spec]
  return cmd + [f"--params_override={s}" for s in COMMON]


def _statuses(root):
  found = {}
  for path in glob.glob(os.path.join(root, "*", rundir.RUN_INFO_FILE)):
    record = run_record.read(os.path.dirname(path))
    if record:
      found[os.path.basename(os.path.dirname(path))] = record["status"]
  return found


def _attempts(model_dir):
  with open(os.path.join(model_dir, sweep.LOG_FILE)) as f:
    return sum(line.startswith(sweep.LOG_HEADER) for line in f)


@testutil.multi_process
def test_sweep_2x2_killed_resumed_and_reported(tmp_path, cifar10_dir):
  root = str(tmp_path / "sweep")
  env = testutil.subprocess_env()
  # Kill the whole sweep (its process group, as a preemption would) once one
  # point has finished and a later one is training: the two points started
  # together end close together, so one of those could finish before the kill.
  first = subprocess.Popen(_sweep_cmd(root, cifar10_dir), env=env,
                           start_new_session=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)

  def one_finished_one_running():
    assert first.poll() is None, first.communicate()[0][-3000:]
    states = _statuses(root)
    return ("finished" in states.values() and
            any(states.get(name) == "running" for name in NAMES[2:]))

  testutil.wait_until(one_finished_one_running, timeout=240, interval=0.1,
                      message="one point finished and one running")
  os.killpg(first.pid, signal.SIGKILL)
  first.communicate()
  before = _statuses(root)
  done_early = sorted(n for n, s in before.items() if s == "finished")
  killed = sorted(n for n, s in before.items() if s == "running")
  started = {n for n in NAMES
             if os.path.exists(os.path.join(root, n, sweep.LOG_FILE))}
  assert done_early and killed
  snapshot = {}
  for name in done_early:
    with open(run_record.path(os.path.join(root, name))) as f:
      snapshot[name] = f.read()

  dry = subprocess.run(_sweep_cmd(root, cifar10_dir) + ["--dry_run"], env=env,
                       capture_output=True, text=True,
                       timeout=testutil.seconds(60))
  for name in killed:
    assert (f"run      {name}: resume (last status running or killed)"
            in dry.stdout)

  second = subprocess.run(_sweep_cmd(root, cifar10_dir), env=env,
                          capture_output=True, text=True,
                          timeout=testutil.seconds(300))
  assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
  assert (f"{4 - len(done_early)} finished, {len(done_early)} skipped "
          "(finished before), 0 failed") in second.stdout

  for name in NAMES:
    model_dir = os.path.join(root, name)
    record = run_record.read(model_dir)
    assert record["status"] == "finished" and record["final_step"] == 4
    rows = metrics_log.read(model_dir)
    assert rows[-1]["global_step"] == 4
    assert record["final_metrics"]["accuracy"] == rows[-1]["accuracy"]
    if name in done_early:  # Skipped: neither retrained nor rewritten.
      assert f"skip     {name}: finished at step 4" in second.stdout
      with open(run_record.path(model_dir)) as f:
        assert f.read() == snapshot[name]
      assert _attempts(model_dir) == 1
    elif name in killed:  # Resumed by the same command.
      assert [h["status"] for h in record["history"]] == ["killed_or_preempted"]
      assert _attempts(model_dir) == 2
    else:  # Not started, or killed before it wrote run_info.json.
      assert record["history"] == []
      assert _attempts(model_dir) == 1 + (name in started)
    # The record names the point's command and values.
    assert f"--model_dir={model_dir}" in record["command"]
    lr, wd = (float(part.split("=")[1]) for part in name.split("__"))
    assert record["config"]["optimizer"]["learning_rate"] == lr
    assert record["config"]["train"]["weight_decay"] == wd
    assert record["config"]["model"]["name"] == "tiny"

  with open(os.path.join(root, sweep.RESULTS_CSV)) as f:
    table = list(csv.DictReader(f))
  assert sorted(row["run"] for row in table) == NAMES
  for row in table:
    # A column per grid key, with the point's value from its config.json.
    lr, wd = (float(part.split("=")[1]) for part in row["run"].split("__"))
    assert float(row["optimizer.learning_rate"]) == lr
    assert float(row["train.weight_decay"]) == wd
    last = metrics_log.read(os.path.join(root, row["run"]))[-1]
    assert row["final_step"] == "4"
    assert float(row["final_accuracy"]) == last["accuracy"]
  with open(os.path.join(root, sweep.RESULTS_MD)) as f:
    markdown = f.read()
  assert all(f"| {name} " in markdown for name in NAMES)
  assert "Failed points" not in markdown
  with open(os.path.join(root, sweep.CURVES_PNG), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"

  # --report_only rebuilds the report from what is on disk.
  for name in (sweep.RESULTS_MD, sweep.RESULTS_CSV, sweep.CURVES_PNG):
    os.remove(os.path.join(root, name))
  report = testutil.run_tool("sweep", "--report_only", f"--root={root}")
  assert report.returncode == 0, report.stderr[-3000:]
  with open(os.path.join(root, sweep.RESULTS_MD)) as f:
    assert f.read() == markdown
  assert os.path.getsize(os.path.join(root, sweep.CURVES_PNG)) > 0
  shutil.rmtree(root)
