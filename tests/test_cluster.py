"""Real TF_CONFIG clusters on 127.0.0.1 through tools/launch_local_cluster.py.

Every cluster here is small (tiny model) and bounded twice: the launcher's own
--timeout_secs stops its tasks, and a watchdog here stops the launcher.
"""

import json
import os
import re
import signal
import subprocess
import threading

import psutil
import pytest

from estimator_cifar.rundir import checkpoint_step, metrics_log
from tests import testutil
from tools import launch_local_cluster


STARTED = re.compile(r"^\[launcher\] (\w+:\d+) started pid=(\d+)")
# hooks.ProgressHook's line: "step 11/30, loss = 2.3026, lr = ...".
STEP_LOG = re.compile(r"^\[(\w+:\d+)\] .*step (\d+)/\d+, loss = [-\d.e]+")
# tests/weights_probe/sitecustomize.py's line, prefixed by the launcher.
WEIGHTS_LOG = re.compile(r"^\[(\w+:\d+)\] WEIGHTS step=(\d+) sum=(\S+)$")
WEIGHTS_PROBE = os.path.join(testutil.REPO_ROOT, "tests", "weights_probe")
LAUNCHER_SECS = testutil.seconds(200)


def launch(launcher_args, model_dir, data_dir, overrides, on_line=None,
           env=None):
  """Runs the launcher to the end; returns (exit status, output lines, pids)."""
  proc = subprocess.Popen(
      testutil.tool_command(
          "launch_local_cluster", *launcher_args,
          f"--timeout_secs={LAUNCHER_SECS}", "--",
          "--experiment=resnet_sgd", f"--model_dir={model_dir}",
          f"--data_dir={data_dir}",
          "--params_override=" + ",".join(testutil.TINY + overrides)),
      cwd=testutil.REPO_ROOT, env=env or testutil.subprocess_env(),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  # The launcher stops its tasks on SIGTERM; this only fires if it hangs.
  watchdog = threading.Timer(LAUNCHER_SECS + 30, proc.terminate)
  watchdog.start()
  lines, pids = [], []
  try:
    for line in proc.stdout:
      line = line.rstrip("\n")
      lines.append(line)
      started = STARTED.match(line)
      if started:
        pids.append((started.group(1), int(started.group(2))))
      if on_line:
        on_line(line, pids)
    proc.wait(timeout=testutil.seconds(60))
  finally:
    watchdog.cancel()
    if proc.poll() is None:
      proc.kill()
      proc.wait()
  return proc.returncode, lines, pids


def final_checkpoint_step(model_dir) -> int:
  import tensorflow as tf
  latest = tf.train.latest_checkpoint(model_dir)
  assert latest and os.path.exists(latest + ".index"), model_dir
  return checkpoint_step(latest)


def assert_all_exited(pids):
  alive = [(name, pid) for name, pid in pids if psutil.pid_exists(pid) and
           psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
  assert not alive, f"still running: {alive}"


def test_launcher_picks_distinct_free_ports_and_checks_its_arguments(capsys):
  spec = launch_local_cluster.cluster_spec(workers=2, ps=1)
  addresses = spec["chief"] + spec["worker"] + spec["ps"]
  assert len(addresses) == len(set(addresses)) == 4
  assert all(a.startswith("127.0.0.1:") for a in addresses)
  config = json.loads(launch_local_cluster.tf_config(spec, "worker", 1))
  assert config == {"cluster": spec, "task": {"type": "worker", "index": 1}}
  for argv in (["--workers=1"], ["--", "--experiment=x", "--mode=train"]):
    with pytest.raises(SystemExit) as info:
      launch_local_cluster.parse_args(argv)
    assert info.value.code == 2
  _, run_args = launch_local_cluster.parse_args(
      ["--ps=2", "--", "--experiment=x", "--model_dir=/m"])
  assert run_args == ["--experiment=x", "--model_dir=/m"]


class WorkerRestartScript:
  """Kills worker:0 at its first step while the chief is held (SIGSTOP).

  Holding the chief until the restarted worker has logged a step makes the
  test independent of speed: however long the restart takes, the run is still
  going when the worker comes back, so rejoining is observed, not raced. In
  parameter-server training a worker talks only to the ps tasks, so it trains
  on while the chief is held. A timer releases the chief in any case.
  """

  def __init__(self):
    self.killed_at = None      # The run's global step when the worker died.
    self.rejoined_at = None    # The first step the restarted worker logged.
    self.chief = None
    self.held = False
    self.release_timer = threading.Timer(testutil.seconds(90), self.release)

  def hold_chief(self):
    if self.chief and not self.held:
      self.held = True
      os.kill(self.chief, signal.SIGSTOP)
      self.release_timer.start()

  def release(self):
    if self.chief:
      os.kill(self.chief, signal.SIGCONT)

  def __call__(self, line, pids):
    self.chief = dict(pids).get("chief:0")
    step = STEP_LOG.match(line)
    if not step:
      return
    role, at = step.group(1), int(step.group(2))
    if role == "chief:0":
      self.hold_chief()
    elif role == "worker:0" and self.killed_at is None:
      os.kill(dict(pids)["worker:0"], signal.SIGKILL)
      self.killed_at = at
      self.hold_chief()
    elif role == "worker:0" and self.rejoined_at is None:
      self.rejoined_at = at
      self.release_timer.cancel()
      self.release()


@testutil.multi_process
def test_parameter_server_cluster_with_a_worker_killed_and_restarted(
    cifar10_dir, tmp_path):
  """1 ps, chief, 1 worker, evaluator; the worker is killed at its first step."""
  steps = 300
  model_dir = str(tmp_path / "ps_run")
  script = WorkerRestartScript()
  try:
    code, lines, pids = launch(
        ["--workers=1", "--ps=1", "--evaluator", "--max_restarts=1"], model_dir,
        cifar10_dir,
        [f"train.steps={steps}", "log.every_steps=50", "summary.save_steps=50",
         "checkpoint.save_steps=100", "eval.throttle_secs=1",
         "distribute.strategy=parameter_server",
         "distribute.max_worker_delay_secs=1"],
        on_line=script)
  finally:
    script.release_timer.cancel()
  text = "\n".join(lines)
  assert code == 0, text[-5000:]
  assert script.killed_at is not None, "the worker never logged a step"
  assert "[launcher] worker:0 exited with -9; restart 1 of 1" in text
  # One chief for the whole run: the worker rejoined, nothing restarted.
  assert [name for name, _ in pids].count("chief:0") == 1
  assert [name for name, _ in pids].count("worker:0") == 2
  assert script.rejoined_at is not None and \
      script.rejoined_at > script.killed_at, \
      "the restarted worker did not continue the run's global step"
  for role in ("chief:0", "worker:0", "evaluator:0"):
    assert f"[launcher] {role} finished (exit 0)" in text
  assert "[launcher] ps:0 finished (exit 0)" in text  # Ended with the job.
  final = final_checkpoint_step(model_dir)
  assert final >= steps
  rows = metrics_log.read(model_dir)
  assert rows and rows[-1]["global_step"] >= steps
  assert rows[-1]["checkpoint"] == f"model.ckpt-{final}"
  assert json.load(open(os.path.join(model_dir, "config.json")))["train"][
      "steps"] == steps
  assert_all_exited(pids)


@testutil.multi_process
def test_multi_worker_mirrored_chief_and_worker_all_reduce(cifar10_dir, tmp_path):
  steps = 30
  model_dir = str(tmp_path / "mwms_run")
  # Each task prints a checksum of its weights every 10 steps.
  env = testutil.subprocess_env()
  env["PYTHONPATH"] = os.pathsep.join([WEIGHTS_PROBE, env["PYTHONPATH"]])
  code, lines, pids = launch(
      ["--workers=1", "--ps=0", "--no-evaluator"], model_dir, cifar10_dir,
      [f"train.steps={steps}", "log.every_steps=10", "checkpoint.save_steps=10",
       "distribute.strategy=multi_worker_mirrored"], env=env)
  text = "\n".join(lines)
  assert code == 0, text[-5000:]
  for role in ("chief:0", "worker:0"):
    assert f"[launcher] {role} finished (exit 0)" in text
  assert final_checkpoint_step(model_dir) == steps
  # Synchronous: both tasks log the same steps. (The progress line shows each
  # task's own replicas' loss, computed on its own shard of the data, so the
  # values differ between tasks.)
  logged = {}
  for match in map(STEP_LOG.match, lines):
    if match:
      loss = re.search(r"loss = ([-\d.e]+)", match.string).group(1)
      logged.setdefault(match.group(1), []).append((int(match.group(2)), loss))
  assert [s for s, _ in logged["chief:0"]] == [s for s, _ in logged["worker:0"]]
  assert len(logged["chief:0"]) >= 3  # Every log.every_steps, and the last.
  # Lock-step: after every 10th step both tasks hold the same weights, and
  # they moved. Tasks training on their own shards would differ from step 1.
  weights = {}
  for match in map(WEIGHTS_LOG.match, lines):
    if match:
      weights.setdefault(match.group(1), {})[int(match.group(2))] = float(
          match.group(3))
  assert sorted(weights["chief:0"]) == [10, 20, 30], text[-5000:]
  assert weights["worker:0"] == pytest.approx(weights["chief:0"], rel=1e-6)
  assert weights["chief:0"][10] != weights["chief:0"][30]
  assert_all_exited(pids)
