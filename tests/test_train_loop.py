"""train.steps_per_loop: K steps per session.run give the steps of K=1.

Each test trains the tiny model on the session's small CIFAR-10 files; the
seeded K=1 and K=4 runs must agree on every checkpointed value.
"""

import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.data.input_pipeline import make_input_fn
from estimator_cifar.engine import estimator_setup, hooks, modes
from estimator_cifar.errors import ConfigError
from estimator_cifar.model import train_loop
from tests.testutil import TINY, checkpoint_steps, iter_events, run_cli, tiny_config

pytestmark = pytest.mark.slow  # Most tests train.
v1 = tf.compat.v1
SEEDED = ["train.seed=3", "summary.save_steps=10", "log.every_steps=10"]


def _values(model_dir: str) -> dict:
  reader = tf.train.load_checkpoint(model_dir)
  return {name: reader.get_tensor(name)
          for name, _ in tf.train.list_variables(model_dir)}


def _summary_steps(model_dir: str, tag: str) -> list[int]:
  return sorted(step for step, value in iter_events(model_dir) if value.tag == tag)


@pytest.fixture(scope="module")
def k1_and_k4(cifar10_dir, tmp_path_factory):
  """40 seeded steps with K=1 and with K=4 (checkpoints every 12 steps)."""
  dirs = {}
  for k in (1, 4):
    model_dir = str(tmp_path_factory.mktemp(f"k{k}"))
    cfg = tiny_config(f"train.steps_per_loop={k}", "train.steps=40",
                      "checkpoint.save_steps=12", *SEEDED)
    modes.run(cfg, model_dir, "train", cifar10_dir)
    dirs[k] = model_dir
  return dirs


def test_k4_reaches_the_weights_and_loss_of_k1(k1_and_k4, cifar10_dir):
  one, four = _values(k1_and_k4[1]), _values(k1_and_k4[4])
  assert one["global_step"] == four["global_step"] == 40
  assert set(one) == set(four)  # No extra variable reaches the checkpoint.
  for name in one:
    np.testing.assert_allclose(four[name], one[name], atol=1e-4, err_msg=name)
  losses = [modes.run(tiny_config(f"train.steps_per_loop={k}", *SEEDED),
                      k1_and_k4[k], "eval", cifar10_dir)["loss"] for k in (1, 4)]
  assert abs(losses[0] - losses[1]) < 1e-4
  # The average of the training losses saw all 40 steps in both.
  assert one["loss_averages/count"] == four["loss_averages/count"] == 40


def test_checkpoints_and_summaries_land_on_loop_boundaries(k1_and_k4):
  steps = checkpoint_steps(k1_and_k4[4])
  assert steps[-1] == 40 and all(s % 4 == 0 for s in steps), steps
  assert len(steps) >= 3  # Periodic saves (every 12 steps) happened.
  for tag in ("losses/total", "learning_rate", "input_images/image/0",
              "weights/tiny/logits/kernel"):
    written = _summary_steps(k1_and_k4[4], tag)
    # summary.save_steps=10: the first loop boundary at or past each due step.
    assert written == [4, 16, 28, 40], (tag, written)


class _StepRecorder(v1.train.SessionRunHook):
  """The global step after every session.run."""

  def begin(self):
    self.steps, self._step = [], v1.train.get_global_step()

  def after_run(self, run_context, run_values):
    self.steps.append(int(run_context.session.run(self._step)))


def test_each_run_advances_k_steps_and_stops_at_max_steps(cifar10_dir, tmp_path):
  cfg = tiny_config("train.steps_per_loop=4", "train.steps=10")
  plan = estimator_setup.make_plan(cfg, cifar10_dir)
  estimator = estimator_setup.make_estimator(cfg, str(tmp_path), plan)
  recorder = _StepRecorder()
  estimator.train(train_loop.stack_batches(
      make_input_fn(cfg, plan.source, training=True), 4),
                  max_steps=plan.max_steps, hooks=[recorder])
  # 10 is not a multiple of 4: the last loop runs the 2 steps left, then one
  # empty run lets Estimator's stop hook see step 10.
  assert recorder.steps == [4, 8, 10, 10]
  assert checkpoint_steps(str(tmp_path))[-1] == 10


def test_resume_continues_from_a_loop_boundary_as_k1_does(cifar10_dir, tmp_path):
  finals = {}
  for k in (1, 4):
    model_dir = str(tmp_path / f"k{k}")
    for steps in (8, 20):
      cfg = tiny_config(f"train.steps_per_loop={k}", f"train.steps={steps}",
                        *SEEDED)
      modes.run(cfg, model_dir, "train", cifar10_dir)
      assert checkpoint_steps(model_dir)[-1] == steps
    finals[k] = _values(model_dir)
  for name in finals[1]:
    np.testing.assert_allclose(finals[4][name], finals[1][name], atol=1e-4,
                               err_msg=name)


def test_sigterm_saves_at_the_loop_boundary(cifar10_dir, tmp_path, monkeypatch):
  class Terminate(v1.train.SessionRunHook):
    def after_run(self, run_context, run_values):
      os.kill(os.getpid(), signal.SIGTERM)  # Handled before the next run.

  real = hooks.train_hooks
  monkeypatch.setattr(hooks, "train_hooks",
                      lambda *a, **k: [Terminate()] + real(*a, **k))
  cfg = tiny_config("train.steps_per_loop=4", "train.steps=40")
  assert modes.run(cfg, str(tmp_path), "train", cifar10_dir) == {}
  assert checkpoint_steps(str(tmp_path))[-1] == 4


def test_nan_in_a_loop_stops_at_its_boundary(cifar10_dir, tmp_path):
  cfg = tiny_config("train.steps_per_loop=4", "train.steps=20",
                    "optimizer.learning_rate=1e30")
  with pytest.raises(hooks.TrainingDivergedError,
                     match="Training diverged at step 4: "):
    modes.run(cfg, str(tmp_path), "train", cifar10_dir)
  assert checkpoint_steps(str(tmp_path)) == [0]


@pytest.mark.parametrize("strategy", ["mirrored", "central_storage",
                                      "multi_worker_mirrored",
                                      "parameter_server"])
def test_strategies_are_refused_with_the_fix(strategy):
  with pytest.raises(ConfigError) as info:
    tiny_config("train.steps_per_loop=4", f"distribute.strategy={strategy}")
  message = str(info.value)
  assert "train.steps_per_loop=4" in message and strategy in message \
      if strategy != "parameter_server" else "parameter-server" in message
  assert "train.steps_per_loop=1" in message


def test_ps_cluster_from_tf_config_is_refused(monkeypatch):
  monkeypatch.setenv("TF_CONFIG", '{"cluster": {"chief": ["h0:1"], "ps": '
                     '["h1:1"], "worker": ["h2:1"]}, "task": {"type": '
                     '"worker", "index": 0}}')
  run_config = tf.estimator.RunConfig()
  model_fn = train_loop.looped(lambda *a: None, 4)
  with pytest.raises(ConfigError, match="parameter-server training"):
    model_fn({}, None, tf.estimator.ModeKeys.TRAIN, {}, run_config)


def test_steps_per_loop_must_be_positive():
  with pytest.raises(ConfigError, match=r"train.steps_per_loop=0 must be in \(0, 1000\]"):
    tiny_config("train.steps_per_loop=0")


def test_cli_refusal_exits_2_with_one_error_line(tmp_path):
  result = run_cli("--experiment=resnet_sgd", f"--model_dir={tmp_path / 'm'}",
                   "--params_override=" + ",".join(
                       TINY + ["train.steps_per_loop=20",
                               "distribute.strategy=mirrored"]))
  assert result.returncode == 2, result.stderr[-2000:]
  errors = [line for line in result.stderr.splitlines()
            if line.startswith("error: ")]
  assert len(errors) == 1 and "distribute.strategy=mirrored" in errors[0]
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "m").exists()


def test_loss_scaling_adamw_and_clipping_match_k1(cifar10_dir, tmp_path):
  """Variables made inside the loop (Adam's beta powers, the dynamic loss
  scale) keep their K=1 names, so checkpoints move between K values."""
  finals = {}
  for k in (1, 2):
    cfg = tiny_config(f"train.steps_per_loop={k}", "train.steps=6", "train.seed=3",
                      "train.precision=mixed_float16", "optimizer.name=adamw",
                      "optimizer.learning_rate=0.01", "optimizer.weight_decay=1e-4",
                      "train.weight_decay=0",
                      "train.clip_global_norm=1")
    modes.run(cfg, str(tmp_path / f"k{k}"), "train", cifar10_dir)
    finals[k] = _values(str(tmp_path / f"k{k}"))
  assert set(finals[1]) == set(finals[2])
  assert {"beta1_power", "current_loss_scale", "good_steps"} <= set(finals[1])
  for name in finals[1]:
    np.testing.assert_allclose(finals[2][name], finals[1][name], atol=1e-4,
                               err_msg=name)
