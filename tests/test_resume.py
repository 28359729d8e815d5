"""Resume: same command, same final step; SIGKILL loses nothing before the last
checkpoint; a model_dir of another model is refused unless asked."""

import json
import os
import signal
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.rundir import checkpoint_step, identity
from estimator_cifar.engine import modes
from estimator_cifar.engine import estimator_setup
from estimator_cifar.errors import CheckpointError
from tests.testutil import TINY, run_cli, start_cli, tiny_config, wait_until

NO_EXPORT = ["eval.export_best=false", "eval.export_latest=0"]


class StartValues(tf.compat.v1.train.SessionRunHook):
  """Records every global variable right after the session is created/restored."""

  def __init__(self):
    self.values = None

  def after_create_session(self, session, coord):
    del coord
    variables = tf.compat.v1.global_variables()
    self.values = dict(zip([v.op.name for v in variables], session.run(variables)))


@pytest.fixture
def start_values(monkeypatch):
  """Makes modes.run's Estimator.train record the values it starts from."""
  hook = StartValues()
  real = estimator_setup.make_estimator

  def make(*args, **kwargs):
    estimator = real(*args, **kwargs)
    train = estimator.train
    estimator.train = lambda input_fn, hooks=None, **kw: train(
        input_fn, hooks=list(hooks or []) + [hook], **kw)
    return estimator

  monkeypatch.setattr(modes, "make_estimator", make)
  return hook


@pytest.mark.slow
def test_rerun_resumes_and_ends_at_the_same_step(tmp_path, cifar10_dir, start_values):
  model_dir = str(tmp_path / "run")
  modes.run(tiny_config(*NO_EXPORT), model_dir, "train", cifar10_dir)
  first = tf.train.latest_checkpoint(model_dir)
  assert checkpoint_step(first) == 6
  before = tf.train.load_checkpoint(first).get_tensor("tiny/conv/kernel")
  # The same command again: nothing left to do, nothing changes.
  start_values.values = None
  modes.run(tiny_config(*NO_EXPORT), model_dir, "train", cifar10_dir)
  assert tf.train.latest_checkpoint(model_dir) == first
  assert start_values.values is None  # Training was skipped, not restarted.
  np.testing.assert_array_equal(
      tf.train.load_checkpoint(first).get_tensor("tiny/conv/kernel"), before)
  # More steps: it continues from step 6 with the saved weights.
  modes.run(tiny_config(*NO_EXPORT, "train.steps=12"), model_dir, "train",
                cifar10_dir)
  assert checkpoint_step(tf.train.latest_checkpoint(model_dir)) == 12
  assert start_values.values["global_step"] == 6
  np.testing.assert_array_equal(start_values.values["tiny/conv/kernel"], before)


@pytest.mark.slow
def test_sigkill_then_rerun_loses_nothing(tmp_path, cifar10_dir, start_values):
  model_dir = str(tmp_path / "run")
  steps = 150
  overrides = TINY + NO_EXPORT + [f"train.steps={steps}", "checkpoint.save_steps=5"]
  proc = start_cli(
      "--experiment=resnet_sgd", "--mode=train", f"--model_dir={model_dir}",
      f"--data_dir={cifar10_dir}", "--params_override=" + ",".join(overrides),
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

  def at_step_10_or_ended():
    latest = tf.train.latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
    return proc.poll() is not None or (latest and checkpoint_step(latest) >= 10)

  try:
    wait_until(at_step_10_or_ended, timeout=120, interval=0.02,
               message="a checkpoint at step 10")
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
  finally:
    proc.kill()
    proc.wait()
  last = tf.train.latest_checkpoint(model_dir)
  assert 10 <= checkpoint_step(last) < steps
  reader = tf.train.load_checkpoint(last)  # Complete: every tensor readable.
  saved = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
  # Rerun the same command (in-process, to see the values it starts from).
  cfg = tiny_config(*NO_EXPORT, f"train.steps={steps}", "checkpoint.save_steps=5")
  modes.run(cfg, model_dir, "train", cifar10_dir)
  assert checkpoint_step(tf.train.latest_checkpoint(model_dir)) == steps
  restored = start_values.values
  assert restored["global_step"] == checkpoint_step(last)
  assert set(saved) <= set(restored)
  for name, value in saved.items():
    np.testing.assert_array_equal(restored[name], value, err_msg=name)


def test_config_differences_show_old_and_new(tmp_path):
  model_dir = str(tmp_path)
  modes.write_config(tiny_config(), model_dir)
  identity.check_config(tiny_config("train.steps=50"), model_dir)  # Fine.
  with pytest.raises(CheckpointError) as e:
    identity.check_config(
        tiny_config("model.name=resnet", "model.depth=32", "data.name=cifar100"),
        model_dir)
  message = str(e.value)
  assert "model.name: 'tiny' -> 'resnet'" in message
  assert "model.depth: 20 -> 32" in message
  assert "data.name: 'cifar10' -> 'cifar100'" in message
  assert "--allow_config_change" in message
  # Coarse vs fine labels only matter for CIFAR-100.
  assert identity.config_differences(
      json.loads(tiny_config().to_json()), tiny_config("data.label=coarse")) == []
  identity.check_config(tiny_config("model.depth=32"), model_dir,
                          allow_change=True)


@pytest.mark.slow
def test_other_model_refused_unless_allowed(tmp_path, cifar10_dir):
  model_dir = str(tmp_path / "run")
  modes.run(tiny_config(*NO_EXPORT), model_dir, "train", cifar10_dir)
  # model.depth is not used by the tiny model, so the override can resume.
  with pytest.raises(CheckpointError, match="model.depth: 20 -> 26"):
    modes.run(tiny_config(*NO_EXPORT, "model.depth=26"), model_dir, "train",
                  cifar10_dir)
  assert json.load(open(os.path.join(model_dir, "config.json")))["model"]["depth"] == 20
  allowed = run_cli(
      "--experiment=resnet_sgd", "--mode=train", f"--model_dir={model_dir}",
      f"--data_dir={cifar10_dir}", "--allow_config_change",
      "--params_override=" + ",".join(TINY + NO_EXPORT + ["model.depth=26"]))
  assert allowed.returncode == 0, allowed.stderr[-2000:]
  assert json.load(open(os.path.join(model_dir, "config.json")))["model"]["depth"] == 26
  assert "step=6" in allowed.stdout


def test_checkpoint_fields_map_onto_run_config(tmp_path):
  by_steps = estimator_setup.run_config(tiny_config(
      "checkpoint.save_steps=7", "checkpoint.keep_max=2",
      "checkpoint.keep_every_n_hours=1.5"), str(tmp_path))
  assert by_steps.save_checkpoints_steps == 7 and by_steps.save_checkpoints_secs is None
  assert by_steps.keep_checkpoint_max == 2
  assert by_steps.keep_checkpoint_every_n_hours == 1.5
  by_secs = estimator_setup.run_config(tiny_config("checkpoint.save_secs=90"), str(tmp_path))
  assert by_secs.save_checkpoints_secs == 90 and by_secs.save_checkpoints_steps is None
