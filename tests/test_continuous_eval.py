"""--mode=continuous_eval beside a trainer; restarts, deleted checkpoints, EMA."""

import glob
import logging
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from estimator_cifar.engine import continuous_eval
from estimator_cifar.rundir import metrics_log
from tests import testutil

# Every test here reads the `watched` trainer + evaluator pair.
pytestmark = [pytest.mark.slow,
              pytest.mark.timeout(testutil.MULTI_PROCESS_TIMEOUT_SECS)]

STEPS, SAVE = 120, 40
PACE_WAIT_SECS = 30
OVERRIDES = testutil.TINY + [f"train.steps={STEPS}", f"checkpoint.save_steps={SAVE}",
                             "checkpoint.keep_max=20",
                             f"eval.timeout_secs={testutil.seconds(120):.0f}",
                             "eval.throttle_secs=0"]


def _cli(mode, model_dir, data_dir, log_path):
  """Starts estimator_cifar.run in `mode`; its output goes to `log_path`."""
  with open(log_path, "w") as log:
    return testutil.start_cli(
        "--experiment=resnet_sgd", f"--mode={mode}", f"--model_dir={model_dir}",
        f"--data_dir={data_dir}", "--params_override=" + ",".join(OVERRIDES),
        stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def watched(cifar10_dir, tmp_path_factory):
  """A trainer and a continuous-eval job on one model_dir, both finished."""
  work = tmp_path_factory.mktemp("watched")
  model_dir = str(work / "run")
  logs = {mode: str(work / f"{mode}.log") for mode in ("continuous_eval", "train")}
  evaluator = _cli("continuous_eval", model_dir, cifar10_dir,
                   logs["continuous_eval"])  # Starts first, waits.
  trainer = _cli("train", model_dir, cifar10_dir, logs["train"])
  try:
    _pace(trainer, model_dir, time.time() + testutil.seconds(240))
    trainer.wait(timeout=testutil.seconds(60))
    evaluator.wait(timeout=testutil.seconds(120))
  finally:
    for proc in (trainer, evaluator):
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  output = {mode: open(path).read() for mode, path in logs.items()}
  assert trainer.returncode == 0, output["train"][-3000:]
  return {"model_dir": model_dir, "data_dir": cifar10_dir,
          "output": output["continuous_eval"], "returncode": evaluator.returncode}


def _latest(model_dir) -> str | None:
  try:
    with open(os.path.join(model_dir, "checkpoint")) as f:
      match = re.search(r'^model_checkpoint_path: "(.*)"', f.read(), re.M)
  except FileNotFoundError:
    return None
  return os.path.basename(match.group(1)) if match else None


def _pace(trainer, model_dir, deadline) -> None:
  """Holds the trainer (SIGSTOP) at each new checkpoint until it is evaluated.

  The tiny model trains faster than an eval builds its graph; pausing it like
  a slow trainer makes "several checkpoints evaluated" independent of the
  machine's load. A checkpoint the evaluator skips still ends the pause after
  PACE_WAIT_SECS.
  """
  seen = None
  while trainer.poll() is None and time.time() < deadline:
    latest = _latest(model_dir)
    if latest and latest != seen:
      seen = latest
      trainer.send_signal(signal.SIGSTOP)
      try:
        give_up = time.time() + testutil.seconds(PACE_WAIT_SECS)
        while latest not in continuous_eval.evaluated_checkpoints(model_dir) \
            and time.time() < give_up:
          time.sleep(0.1)
      finally:
        trainer.send_signal(signal.SIGCONT)
    time.sleep(0.05)


def _copy(watched, tmp_path) -> str:
  target = str(tmp_path / "run")
  shutil.copytree(watched["model_dir"], target)
  return target


def _estimator(model_dir, data_dir, *overrides):
  from estimator_cifar.engine import estimator_setup
  from estimator_cifar.data.input_pipeline import make_input_fn
  cfg = testutil.tiny_config(*OVERRIDES[len(testutil.TINY):], *overrides)
  plan = estimator_setup.make_plan(cfg, data_dir)
  return (estimator_setup.make_estimator(cfg, model_dir, plan),
          make_input_fn(cfg, plan.source, training=False))


def test_beside_a_trainer_each_checkpoint_is_evaluated_once_to_the_last(watched):
  assert watched["returncode"] == 0, watched["output"][-3000:]
  rows = metrics_log.read(watched["model_dir"])
  names = [row["checkpoint"] for row in rows]
  assert len(names) == len(set(names)), names  # Never twice.
  assert len(names) >= 3, names  # Several, while the trainer was running.
  steps = [row["global_step"] for row in rows]
  assert steps == sorted(steps) and steps[-1] == STEPS
  assert names[-1] == f"model.ckpt-{STEPS}"
  for row in rows:
    assert row["checkpoint"] == f"model.ckpt-{row['global_step']}"
    assert 0 <= row["accuracy"] <= 1 and row["loss"] > 0
  assert f"mode=continuous_eval step={STEPS}" in watched["output"]
  # Eval summaries for TensorBoard, one event per evaluated checkpoint.
  eval_dir = os.path.join(watched["model_dir"], "eval")
  assert glob.glob(os.path.join(eval_dir, "events.out.*"))
  accuracy_steps = [step for step, value in testutil.iter_events(eval_dir)
                    if value.tag == "accuracy"]
  assert sorted(accuracy_steps) == steps


def test_restart_does_not_evaluate_again_and_timeout_ends_the_job(watched,
                                                                   tmp_path):
  model_dir = _copy(watched, tmp_path)
  before = metrics_log.read(model_dir)
  estimator, input_fn = _estimator(model_dir, watched["data_dir"])
  start = time.time()
  # The final checkpoint is in metrics.jsonl: the restarted job ends at once.
  assert continuous_eval.run(estimator, input_fn, model_dir, STEPS, 60) == {}
  assert time.time() - start < testutil.seconds(30)
  # A run whose final step never comes: the job gives up after the timeout.
  start = time.time()
  assert continuous_eval.run(estimator, input_fn, model_dir, 10 * STEPS, 1) == {}
  assert time.time() - start < testutil.seconds(30)
  assert metrics_log.read(model_dir) == before


def test_a_checkpoint_deleted_after_listing_is_skipped(watched, tmp_path, caplog):
  model_dir = _copy(watched, tmp_path)
  os.remove(metrics_log.path(model_dir))
  gone, half_gone, kept = (os.path.join(model_dir, f"model.ckpt-{s}")
                           for s in (SAVE, 2 * SAVE, 3 * SAVE))
  for path in glob.glob(gone + ".*"):  # The trainer's Saver removed it.
    os.remove(path)
  for path in glob.glob(half_gone + ".data-*"):  # Removed while loading.
    os.remove(path)
  estimator, input_fn = _estimator(model_dir, watched["data_dir"])
  with caplog.at_level(logging.WARNING):
    results = [continuous_eval.evaluate_one(estimator, input_fn, path)
               for path in (gone, half_gone, kept)]
  assert results[:2] == [None, None]
  assert results[2]["global_step"] == 3 * SAVE
  assert [r["checkpoint"] for r in metrics_log.read(model_dir)] == \
      [f"model.ckpt-{3 * SAVE}"]
  skipped = [r.getMessage() for r in caplog.records if "disappeared" in
             r.getMessage()]
  assert len(skipped) == 2
  assert f"model.ckpt-{SAVE} disappeared" in skipped[0]
  assert f"model.ckpt-{2 * SAVE} disappeared" in skipped[1]


def test_continuous_eval_with_ema_weights(watched, tmp_path):
  model_dir = _copy(watched, tmp_path)
  raw = {r["checkpoint"]: r for r in metrics_log.read(model_dir)}
  os.remove(metrics_log.path(model_dir))
  estimator, input_fn = _estimator(model_dir, watched["data_dir"],
                                   "ema.eval_with_ema=true")
  final = os.path.join(model_dir, f"model.ckpt-{STEPS}")
  result = continuous_eval.evaluate_one(estimator, input_fn, final)
  assert result["global_step"] == STEPS
  # The averaged weights give another model than the raw ones.
  assert result["loss"] != pytest.approx(raw[f"model.ckpt-{STEPS}"]["loss"],
                                         rel=1e-6)


def test_a_stop_request_abandons_the_evaluation_and_logs_nothing(watched,
                                                                 tmp_path):
  from estimator_cifar.engine import signals
  model_dir = _copy(watched, tmp_path)
  before = metrics_log.read(model_dir)
  estimator, input_fn = _estimator(model_dir, watched["data_dir"])
  stop = signals.StopRequest("testing")
  stop.request("SIGTERM")
  final = os.path.join(model_dir, f"model.ckpt-{STEPS}")
  assert continuous_eval.evaluate_one(estimator, input_fn, final, stop) is None
  assert metrics_log.read(model_dir) == before


def test_the_throttle_never_holds_back_the_final_checkpoint(watched, tmp_path):
  model_dir = _copy(watched, tmp_path)
  os.remove(metrics_log.path(model_dir))
  estimator, input_fn = _estimator(model_dir, watched["data_dir"])
  start = time.time()
  result = continuous_eval.run(estimator, input_fn, model_dir, STEPS, 600,
                               throttle_secs=600)
  # Evaluated at once, and done: run_info.json says the run ended there.
  assert time.time() - start < 60
  assert result["global_step"] == STEPS
  assert [r["checkpoint"] for r in metrics_log.read(model_dir)] == \
      [f"model.ckpt-{STEPS}"]
