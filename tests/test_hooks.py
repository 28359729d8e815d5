"""Console hooks: progress lines on due steps only, NaN stops, finite checkpoints."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.engine import hooks, modes
from estimator_cifar import rundir
from estimator_cifar.model import summaries
from estimator_cifar.errors import ConfigError, UserError
from tests.testutil import (PROGRESS, REPO_ROOT, TINY, checkpoint_steps,
                            error_line, read_events, run_cli, scalars, seconds,
                            subprocess_env, tiny_config)

v1 = tf.compat.v1


def _toy_graph(loss_fn):
  """A global step that counts, and loss_fn(step before the update)."""
  step = v1.train.get_or_create_global_step()
  before = step.read_value()
  with tf.control_dependencies([before]):
    train_op = step.assign_add(1)
  v1.add_to_collection(summaries.LOSS_COLLECTION, loss_fn(before))
  v1.add_to_collection(summaries.LEARNING_RATE_COLLECTION, tf.constant(0.25))
  return train_op


class _CountingProgress(hooks.ProgressHook):
  """Records which steps asked Session.run for extra fetches."""

  def before_run(self, run_context):
    args = super().before_run(run_context)
    self.fetched.append(self._step + 1 if args is not None else None)
    return args


def test_progress_hook_fetches_and_logs_only_on_due_steps(tmp_path, caplog):
  # The absl logger, by name: parsing absl flags (as in-process CLI tests do)
  # leaves it at WARNING, which would drop the INFO lines before caplog.
  caplog.set_level(logging.INFO, logger="absl")
  with tf.Graph().as_default():
    train_op = _toy_graph(lambda s: tf.cast(s, tf.float32) + 0.5)
    hook = _CountingProgress(max_steps=12, batch_size=4, every_steps=5,
                             output_dir=str(tmp_path))
    hook.fetched = []
    with v1.train.MonitoredSession(hooks=[
        hook, v1.train.StopAtStepHook(last_step=12)]) as sess:
      while not sess.should_stop():
        sess.run(train_op)
  # The first step, every 5 after it (Estimator's summary schedule), the last.
  assert [s for s in hook.fetched if s is not None] == [1, 6, 11, 12]
  assert hook.fetched.count(None) == 8
  lines = [r.getMessage() for r in caplog.records
           if r.getMessage().startswith("step ")]
  assert lines[0] == "step 1/12, loss = 0.5000, lr = 0.25 (timing from the next line on)"
  matches = [PROGRESS.fullmatch(line) for line in lines[1:]]
  assert [m.group(1) for m in matches] == ["6", "11", "12"]
  assert lines[1].startswith("step 6/12, loss = 5.5000, lr = 0.25 (")
  assert all(float(m.group(4)) > 0 for m in matches)
  speed = scalars(read_events(str(tmp_path)))
  assert set(speed["examples/sec"]) == set(speed["global_step/sec"]) == {6, 11, 12}
  for step, rate in speed["examples/sec"].items():  # batch x steps/sec.
    assert rate == pytest.approx(4 * speed["global_step/sec"][step], rel=1e-4)


def test_nan_guard_names_the_step(tmp_path):
  with tf.Graph().as_default():
    train_op = _toy_graph(
        lambda s: tf.where(s >= 3, np.float32(np.nan), np.float32(1.0)))
    with pytest.raises(hooks.TrainingDivergedError) as info:
      with v1.train.MonitoredSession(
          hooks=[hooks.NanGuardHook(str(tmp_path))]) as sess:
        for _ in range(10):
          sess.run(train_op)
  # The 4th update is the first whose loss (computed at step 3) is NaN.
  message = str(info.value)
  assert message.startswith("Training diverged at step 4: the loss is NaN.")
  assert "No checkpoint has been written" in message
  assert isinstance(info.value, UserError)


def test_format_eta():
  assert hooks.format_eta(5283.4) == "1:28:03"
  assert hooks.format_eta(2 * 86400 + 3 * 3600 + 245) == "2 days, 3:04:05"


def test_negative_histogram_steps_is_a_config_error(tmp_path):
  with pytest.raises(ConfigError, match="summary.histogram_steps"):
    hooks.train_hooks(tiny_config("summary.histogram_steps=-1"), str(tmp_path), 6)


def _checkpoint_steps_all_finite(model_dir: str) -> list[int]:
  """The steps of the checkpoints on disk, asserting every float is finite."""
  steps = checkpoint_steps(model_dir)
  for step in steps:
    reader = tf.train.load_checkpoint(
        os.path.join(model_dir, f"{rundir.CHECKPOINT_BASENAME}-{step}"))
    for name in reader.get_variable_to_shape_map():
      value = np.asarray(reader.get_tensor(name))
      if value.dtype.kind == "f":
        assert np.all(np.isfinite(value)), (step, name)
  return steps


@pytest.mark.slow
def test_cli_nan_stop_keeps_checkpoints_finite(cifar10_dir, tmp_path):
  """lr 1e30 with a checkpoint due every step: the step-2 save is refused."""
  model_dir = str(tmp_path / "m")
  proc = run_cli("--experiment=resnet_sgd", f"--model_dir={model_dir}",
                 f"--data_dir={cifar10_dir}", "--params_override=" + ",".join(
                     TINY + ["train.steps=20", "optimizer.learning_rate=1e30",
                             "checkpoint.save_steps=1"]))
  error = error_line(proc.returncode, proc.stderr)
  assert error.startswith("error: Training diverged at step 2: ")
  assert f"last good checkpoint is {model_dir}/model.ckpt-1 (step 1)" in error
  assert "optimizer.learning_rate" in error
  assert _checkpoint_steps_all_finite(model_dir) == [0, 1]
  assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-1")


@pytest.mark.slow
def test_nan_loss_stops_before_any_further_save(cifar10_dir, tmp_path):
  cfg = tiny_config("train.steps=20", "optimizer.learning_rate=1e30")
  with pytest.raises(hooks.TrainingDivergedError) as info:
    modes.run(cfg, str(tmp_path), "train", cifar10_dir)
  assert str(info.value).startswith("Training diverged at step 2: the loss is ")
  assert "model.ckpt-0 (step 0)" in str(info.value)
  assert _checkpoint_steps_all_finite(str(tmp_path)) == [0]


@pytest.mark.slow
def test_final_save_of_diverged_weights_is_refused(cifar10_dir, tmp_path):
  """An infinite rate ruins the weights in the last step: the save that
  Estimator makes when training ends (CheckpointSaverHook.end) is refused."""
  cfg = tiny_config("train.steps=1")
  # validate() refuses an infinite rate; set after it, as a rate that only
  # overflows mid-run would be.
  cfg.optimizer.learning_rate = float("inf")
  with pytest.raises(hooks.TrainingDivergedError,
                     match=r"at step 1: \d+ variable\(s\) hold NaN or Inf"):
    modes.run(cfg, str(tmp_path), "train", cifar10_dir)
  assert _checkpoint_steps_all_finite(str(tmp_path)) == [0]


@pytest.mark.parametrize("given, expected", [(None, "3"), ("0", "0")])
def test_tf_cpp_logs_quiet_by_default_and_overridable(given, expected):
  env = subprocess_env()
  del env["TF_CPP_MIN_LOG_LEVEL"]
  if given is not None:
    env["TF_CPP_MIN_LOG_LEVEL"] = given
  proc = subprocess.run(
      [sys.executable, "-c", "import os, estimator_cifar.run; "
       "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True,
      timeout=seconds(60))
  assert proc.stdout.strip() == expected, proc.stderr
