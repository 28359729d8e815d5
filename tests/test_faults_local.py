"""Local runs: Ctrl-C, a second signal, and continuous_eval on time.

Real processes and real signals. Limits are the promised times times
LOAD_MARGIN, scaled by ESTIMATOR_CIFAR_TIME_SCALE (testutil.seconds).
"""

import os
import signal
import subprocess
import time

import pytest

from estimator_cifar.engine import signals
from estimator_cifar.rundir import checkpoint_check, run_record
from tests import testutil

LOAD_MARGIN = 1.5  # The promised times hold on a machine with cores to spare.


def limit(promised_secs: float) -> float:
  return testutil.seconds(promised_secs * LOAD_MARGIN)

# Periodic checkpoints far apart: whatever is saved comes from the signal.
LONG_RUN = testutil.TINY + ["train.steps=100000", "checkpoint.save_steps=100000",
                            "log.every_steps=20"]


def start_training(model_dir, data_dir):
  return testutil.start_cli(
      "--experiment=resnet_sgd", "--mode=train", f"--model_dir={model_dir}",
      f"--data_dir={data_dir}", "--params_override=" + ",".join(LONG_RUN),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_training(proc, output: testutil.OutputReader, model_dir):
  """Until the step-0 checkpoint is written and a step past it logged."""
  import tensorflow as tf

  def past_step_0():
    return proc.poll() is not None or (
        tf.train.latest_checkpoint(model_dir) is not None and
        any(int(m.group(1)) > 0 for m in map(testutil.PROGRESS.search, output.err) if m))

  testutil.wait_until(past_step_0, timeout=240, interval=0.1, message="a step past 0")
  assert proc.poll() is None, "".join(output.err)[-3000:]


def signal_training(model_dir, data_dir, *signals):
  """Starts training, sends `signals` once it runs; (proc, out, err, seconds
  from the signals to the exit)."""
  proc = start_training(model_dir, data_dir)
  output = testutil.OutputReader(proc)
  try:
    wait_for_training(proc, output, model_dir)
    for sig in signals:
      proc.send_signal(sig)
    sent = time.monotonic()
    proc.wait(timeout=testutil.seconds(120))
    took = time.monotonic() - sent
  finally:
    proc.kill()
    proc.wait()
  return (proc, *output.text(), took)


@pytest.mark.slow
def test_ctrl_c_saves_at_the_current_step_with_one_line(tmp_path, cifar10_dir):
  import tensorflow as tf
  model_dir = str(tmp_path / "run")
  proc, out, err, took = signal_training(model_dir, cifar10_dir,
                                         signal.SIGINT)
  assert proc.returncode == 0, err[-3000:]
  assert took <= limit(15)
  assert "Traceback" not in err and "KeyboardInterrupt" not in err
  latest = tf.train.latest_checkpoint(model_dir)
  step = checkpoint_check.step_of(latest)
  assert step > 0 and checkpoint_check.checkpoint_problem(latest) is None
  lines = [l for l in out.splitlines() if l.startswith("Interrupted:")]
  assert lines == [f"Interrupted: resnet_sgd mode=train step={step} "
                   f"checkpoint={latest} model_dir={model_dir}; saved at step "
                   f"{step}; run the same command to continue."]
  assert run_record.read(model_dir)["status"] == "interrupted"


@pytest.mark.slow
def test_a_second_signal_exits_at_once(tmp_path, cifar10_dir):
  model_dir = str(tmp_path / "run")
  proc, _, err, took = signal_training(model_dir, cifar10_dir,
                                       signal.SIGTERM, signal.SIGINT)
  # Whichever the handler saw second decides the status: 128 + its number.
  assert proc.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM), \
      err[-3000:]
  assert took <= limit(5)
  assert "again: exiting now" in err


def test_stop_request_wait_returns_early_and_restores_handlers():
  before = signal.getsignal(signal.SIGTERM)
  with signals.StopRequest("testing") as stop:
    assert signal.getsignal(signal.SIGTERM) != before
    start = time.monotonic()
    assert stop.wait(0.3) is False
    assert time.monotonic() - start >= 0.3
    os.kill(os.getpid(), signal.SIGTERM)  # Handled between bytecodes.
    assert stop.wait(10) is True and stop.signal_name == "SIGTERM"
  assert signal.getsignal(signal.SIGTERM) == before


@testutil.multi_process
def test_continuous_eval_with_default_settings_is_on_time(tmp_path, cifar10_dir):
  """Started before any checkpoint, with eval.throttle_secs=600 (default)."""
  from estimator_cifar.rundir import metrics_log
  model_dir = str(tmp_path / "run")
  overrides = testutil.TINY + ["train.steps=120", "checkpoint.save_steps=40"]
  def cli(mode):
    return testutil.start_cli(
        "--experiment=resnet_sgd", f"--mode={mode}", f"--model_dir={model_dir}",
        f"--data_dir={cifar10_dir}", "--params_override=" + ",".join(overrides),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

  evaluator = cli("continuous_eval")
  trainer = cli("train")
  try:
    _, trainer_err = trainer.communicate(timeout=testutil.seconds(300))
    assert trainer.returncode == 0, trainer_err[-3000:]
    trained = time.time()
    _, err = evaluator.communicate(timeout=limit(60) + 30)
  finally:
    for proc in (trainer, evaluator):
      proc.kill()
  assert evaluator.returncode == 0, err[-3000:]
  rows = metrics_log.read(model_dir)
  assert rows[-1]["checkpoint"] == "model.ckpt-120"
  assert rows[-1]["time"] - trained <= limit(60)
  assert len(rows) <= 2  # The throttle spaced the rest out.
  written = os.path.getmtime(os.path.join(model_dir,
                                          rows[0]["checkpoint"] + ".index"))
  assert rows[0]["time"] - written <= limit(30)
