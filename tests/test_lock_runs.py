"""One writer per model_dir, end to end: real trainers, continuous-eval jobs
and a cluster on one model_dir, real signals (rundir/lock.py)."""

import json
import os
import signal
import subprocess
import time

import pytest

from estimator_cifar import api, errors, rundir
from estimator_cifar.rundir import lock, metrics_log, run_record
from tests import test_lock, testutil
from tests.test_cluster import launch

LONG_RUN = ["train.steps=100000", "checkpoint.save_steps=100000"]


def cli_args(model_dir, data_dir, mode, *overrides):
  return ["--experiment=resnet_sgd", f"--mode={mode}", f"--model_dir={model_dir}",
          f"--data_dir={data_dir}",
          "--params_override=" + ",".join(testutil.TINY + list(overrides))]


def start(model_dir, data_dir, mode, *overrides):
  return testutil.start_cli(*cli_args(model_dir, data_dir, mode, *overrides),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_lock(proc, model_dir, role):
  """Until `proc` holds the `role` lock of model_dir."""
  path = lock.path(model_dir, role)
  testutil.wait_until(lambda: os.path.exists(path) or proc.poll() is not None,
                      120, message=f"the {role} lock")
  assert proc.poll() is None, proc.communicate()[1][-3000:]


def files(model_dir) -> dict:
  """Every file under model_dir with its bytes."""
  found = {}
  for root, _, names in os.walk(model_dir):
    for name in names:
      with open(os.path.join(root, name), "rb") as f:
        found[os.path.relpath(os.path.join(root, name), model_dir)] = f.read()
  return found


def refused_for(proc, model_dir, data_dir, mode, *overrides):
  """Runs a second job for the role `proc` holds; its `error:` line, after
  checking that it wrote nothing."""
  before = files(model_dir)
  second = testutil.run_cli(*cli_args(model_dir, data_dir, mode, *overrides),
                            timeout=120)
  line = testutil.error_line(second.returncode, second.stderr)
  assert f"pid {proc.pid} on host" in line and "another --model_dir" in line
  assert files(model_dir) == before
  return line


@testutil.multi_process
def test_a_second_trainer_is_refused_and_the_first_keeps_one_history(
    tmp_path, cifar10_dir):
  model_dir = str(tmp_path / "run")
  run = ["train.steps=40", "checkpoint.save_steps=10", "eval.throttle_secs=0"]
  first = start(model_dir, cifar10_dir, "train_and_eval", *run)
  try:
    wait_for_lock(first, model_dir, lock.TRAINER)
    first.send_signal(signal.SIGSTOP)  # Still holding the lock when asked.
    refused_for(first, model_dir, cifar10_dir, "train_and_eval", *run)
    first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=testutil.seconds(240))
  finally:
    first.kill()
  assert first.returncode == 0, err[-3000:]
  steps = [row["global_step"] for row in metrics_log.read(model_dir)]
  assert steps == sorted(set(steps)) and steps[-1] == 40, steps
  record = run_record.read(model_dir)
  assert record["status"] == "finished" and record["history"] == []
  assert not os.path.exists(lock.path(model_dir, lock.TRAINER))


@testutil.multi_process
def test_a_second_continuous_eval_job_is_refused_and_sigterm_releases(
    tmp_path, cifar10_dir):
  model_dir = str(tmp_path / "run")
  first = start(model_dir, cifar10_dir, "continuous_eval",
                "eval.timeout_secs=600")
  try:
    wait_for_lock(first, model_dir, lock.evaluator())
    refused_for(first, model_dir, cifar10_dir, "continuous_eval")
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=testutil.seconds(60))
  finally:
    first.kill()
  assert first.returncode == 0, err[-3000:]
  assert not os.path.exists(lock.path(model_dir, lock.evaluator()))


@testutil.multi_process
def test_a_sigkilled_trainer_does_not_block_the_next_run(tmp_path, cifar10_dir):
  model_dir = str(tmp_path / "run")
  killed = start(model_dir, cifar10_dir, "train", *LONG_RUN)
  try:
    wait_for_lock(killed, model_dir, lock.TRAINER)
  finally:
    killed.kill()
    killed.wait()
  assert os.path.exists(lock.path(model_dir, lock.TRAINER))
  began = time.monotonic()
  rerun = testutil.run_cli(*cli_args(model_dir, cifar10_dir, "train"))
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  took = [line for line in rerun.stderr.splitlines() if "Took over" in line]
  assert len(took) == 1 and f"pid {killed.pid} is gone" in took[0], took
  assert time.monotonic() - began < testutil.seconds(120)


@pytest.mark.slow
def test_another_machines_lock_refuses_until_stale_then_is_taken_over(
    tmp_path, cifar10_dir, caplog):
  model_dir = str(tmp_path / "run")
  path = test_lock.write_lock(model_dir, age_secs=10)
  with pytest.raises(errors.CheckpointError, match="pid 1 on host elsewhere"):
    api.train(testutil.tiny_config(), model_dir=model_dir, data_dir=cifar10_dir,
              mode="train")
  assert sorted(os.listdir(model_dir)) == [rundir.LOCK_DIR]  # Nothing written.
  test_lock.write_lock(model_dir, age_secs=lock.STALE_AFTER_SECS + 1)
  result = api.train(testutil.tiny_config(), model_dir=model_dir,
                     data_dir=cifar10_dir, mode="train")
  assert result["global_step"] == 6
  assert any("Took over the stale trainer lock" in r.getMessage() and
             "heartbeat stopped" in r.getMessage() for r in caplog.records)
  assert not os.path.exists(path)


@pytest.mark.parametrize("mode", ["train", "continuous_eval", "export"])
def test_a_folder_of_other_files_is_refused_in_every_mode(tmp_path, capsys,
                                                          cifar10_dir, mode):
  (tmp_path / "thesis.tex").write_text("mine")
  (tmp_path / "figures").mkdir()
  code, _, err = testutil.cli_in_process(
      capsys, *cli_args(str(tmp_path), cifar10_dir, mode))
  line = testutil.error_line(code, err)
  assert "figures, thesis.tex" in line and "new or empty folder" in line
  assert sorted(os.listdir(tmp_path)) == ["figures", "thesis.tex"]


def test_the_api_refuses_a_folder_of_other_files(tmp_path, cifar10_dir):
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(errors.CheckpointError, match="notes.txt"):
    api.train(testutil.tiny_config(), model_dir=str(tmp_path),
              data_dir=cifar10_dir)
  assert os.listdir(tmp_path) == ["notes.txt"]


@testutil.multi_process
def test_a_cluster_runs_under_its_chiefs_and_its_evaluators_locks(
    tmp_path, cifar10_dir):
  """Workers and ps tasks take no lock: they share the chief's run."""
  model_dir = str(tmp_path / "ps_run")
  holders = {}  # Lock file name -> the pids seen holding it.

  def watch_locks(line, pids):
    del line, pids
    locks_dir = os.path.join(model_dir, rundir.LOCK_DIR)
    for name in os.listdir(locks_dir) if os.path.isdir(locks_dir) else ():
      try:
        with open(os.path.join(locks_dir, name)) as f:
          holders.setdefault(name, set()).add(json.load(f)["pid"])
      except (OSError, ValueError):
        pass  # Released, or a claim or temporary file.

  code, lines, pids = launch(
      ["--workers=1", "--ps=1", "--evaluator"], model_dir, cifar10_dir,
      ["train.steps=60", "checkpoint.save_steps=30", "eval.throttle_secs=1",
       "distribute.strategy=parameter_server",
       "distribute.max_worker_delay_secs=1"], on_line=watch_locks)
  text = "\n".join(lines)
  assert code == 0, text[-5000:]
  started = dict(pids)
  assert holders.get("trainer.lock") == {started["chief:0"]}, holders
  assert holders.get(f"{lock.evaluator()}.lock") == {started["evaluator:0"]}
  assert not os.path.exists(os.path.join(model_dir, rundir.LOCK_DIR))
