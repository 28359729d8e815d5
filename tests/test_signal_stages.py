"""SIGTERM at every stage of a training run, graph construction included:
before the session exists there is no step to finish, so the process ends at
once with 128 + the signal's number. Real processes, real signals."""

import os
import signal
import time

import pytest

from estimator_cifar.engine import signals
from estimator_cifar.rundir import run_record
from tests import testutil

# ResNet-110: a valid network whose graph takes tens of seconds to build here.
DEEP = ["model.name=resnet", "model.depth=110", "train.batch_size=2",
        "train.precision=float32",
        "eval.batch_size=2", "train.steps=1", "data.name=synthetic",
        "data.synthetic_train_size=10", "data.synthetic_eval_size=10",
        "eval.export_best=false", "eval.export_latest=0"]


@pytest.mark.slow
def test_sigterm_while_the_graph_is_built_exits_at_once(tmp_path):
  model_dir = str(tmp_path / "run")
  log = tmp_path / "stderr.txt"
  with open(log, "w") as stderr:
    proc = testutil.start_cli("--experiment=resnet_sgd", "--mode=train",
                              f"--model_dir={model_dir}",
                              "--params_override=" + ",".join(DEEP),
                              stdout=stderr, stderr=stderr)
  try:
    # Logged as the estimator is made, just before the graph is built (the
    # console hides TensorFlow's own "Calling model_fn." line).
    testutil.wait_until(lambda: "CPU kernels:" in log.read_text(), 120,
                        message="the graph construction to start")
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    proc.wait(timeout=testutil.seconds(30))
    took = time.monotonic() - sent
  finally:
    proc.kill()
  err = log.read_text()
  assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
  assert took <= testutil.seconds(10)
  # Stopped during construction: not even the step-0 checkpoint was written.
  assert not os.path.exists(os.path.join(model_dir, "model.ckpt-0.index"))
  assert "SIGTERM: stopping now, before training started." in err
  assert err.strip().splitlines()[-1] == (
      "Preempted (SIGTERM) before training started; nothing was saved by "
      "this run.")
  assert "Traceback" not in err
  assert run_record.read(model_dir)["status"] == "preempted"


def test_early_stop_request_raises_until_polled():
  with signals.StopRequest("saving", early_action="stopping now") as stop:
    with pytest.raises(signals.Stopped) as e:
      os.kill(os.getpid(), signal.SIGTERM)
      assert stop.requested  # Python runs the handler on entering this call.
    assert e.value.exit_code == 143 and e.value.run_status == "preempted"
  with signals.StopRequest("saving", early_action="stopping now") as stop:
    stop.polled()
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.wait(10) and stop.signal_name == "SIGINT"
