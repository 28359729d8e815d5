"""Schedules against their closed forms; weight-decay choices; label smoothing.

The formulas here are written out independently of optim.py, from its module
docstring, so a slip in either shows up.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import config as config_lib
from estimator_cifar.model import model_fn as model_fn_lib
from estimator_cifar.model import nets, optim
from estimator_cifar.errors import ConfigError

v1 = tf.compat.v1

STEPS_PER_EPOCH = 10.0
TOTAL = 200
BASE = 0.4
# Steps that hit boundaries, their neighbours, warm-up and the end of the run.
STEPS = [0, 1, 5, 9, 10, 11, 14, 15, 16, 29, 30, 31, 55, 99, 100, 150, 199,
         200, 250]


def _cfg(**schedule) -> config_lib.ExperimentConfig:
  cfg = config_lib.ExperimentConfig()
  cfg.optimizer.learning_rate = BASE
  for key, value in schedule.items():
    setattr(cfg.schedule, key, value)
  return config_lib.validate(cfg)


def _rates(cfg, steps_per_epoch=STEPS_PER_EPOCH, total=TOTAL, steps=STEPS):
  """The graph's learning rate at each of `steps`, in one session."""
  with tf.Graph().as_default():
    step = v1.placeholder(tf.int64, [])
    rate = optim.learning_rate(cfg, step, steps_per_epoch, total)
    with v1.Session() as sess:
      return [float(sess.run(rate, {step: s})) for s in steps]


def _warm(formula, warmup_epochs):
  """The documented warm-up: linear from 0 to base over W steps."""
  w = warmup_epochs * STEPS_PER_EPOCH
  return lambda s: BASE * s / w if s < w else formula(s)


CASES = {
    "constant": ({}, lambda s: BASE),
    "constant+warmup": (dict(warmup_epochs=2.0), _warm(lambda s: BASE, 2.0)),
    "exponential_staircase": (
        dict(name="exponential", decay_rate=0.5, decay_epochs=3.0),
        lambda s: BASE * 0.5 ** math.floor(s / 10 / 3.0)),
    "exponential_smooth": (
        dict(name="exponential", decay_rate=0.5, decay_epochs=3.0,
             staircase=False),
        lambda s: BASE * 0.5 ** (s / 10 / 3.0)),
    "polynomial": (
        dict(name="polynomial", end_learning_rate=0.01, power=2.0),
        lambda s: (BASE - 0.01) * (1 - min(s, TOTAL) / TOTAL) ** 2 + 0.01),
    "polynomial_cycle": (
        # Horizon 6 epochs = 60 steps, restarting: T' = 60 * ceil(s / 60).
        dict(name="polynomial", end_learning_rate=0.01, power=1.0,
             cycle=True, horizon_epochs=6.0),
        lambda s: (BASE - 0.01) * (1 - s / (60 * max(1, math.ceil(s / 60))))
        + 0.01),
    "piecewise_multipliers": (
        dict(name="piecewise", boundaries_epochs=[1.5, 3.0],
             multipliers=[1.0, 0.1, 0.01]),
        lambda s: BASE * (1.0 if s < 15 else 0.1 if s < 30 else 0.01)),
    "piecewise_values+warmup": (
        dict(name="piecewise", boundaries_epochs=[1.5, 3.0],
             values=[0.3, 0.2, 0.1], warmup_epochs=1.0),
        _warm(lambda s: 0.3 if s < 15 else 0.2 if s < 30 else 0.1, 1.0)),
    "cosine+warmup": (
        dict(name="cosine", warmup_epochs=1.0, end_learning_rate=0.004),
        _warm(lambda s: 0.004 + (BASE - 0.004) * 0.5 *
              (1 + math.cos(math.pi * min(s, TOTAL) / TOTAL)), 1.0)),
    "cosine_horizon": (
        dict(name="cosine", horizon_epochs=10.0),
        lambda s: BASE * 0.5 * (1 + math.cos(math.pi * min(s, 100) / 100))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_schedule_matches_formula(case):
  schedule, formula = CASES[case]
  got = _rates(_cfg(**schedule))
  want = [formula(s) for s in STEPS]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7,
                             err_msg=f"{case} at steps {STEPS}")


def test_schedule_formula_spot_values():
  """A few hand-computed values, so the formulas above are not self-fulfilling."""
  cfg = _cfg(name="piecewise", boundaries_epochs=[1.5, 3.0],
             multipliers=[1.0, 0.1, 0.01], warmup_epochs=1.0)
  assert _rates(cfg, steps=[0, 5, 10, 14, 15, 30]) == pytest.approx(
      [0.0, 0.2, 0.4, 0.4, 0.04, 0.004], rel=1e-6)
  cosine = _cfg(name="cosine")
  assert _rates(cosine, steps=[0, 100, 200, 300]) == pytest.approx(
      [0.4, 0.2, 0.0, 0.0], abs=1e-7)


def test_piecewise_boundaries_round_epochs_to_steps():
  # He et al.'s ResNet-110 warm-up: 400 steps at batch 128 on 50k images.
  cfg = config_lib.load_experiment("resnet110_sgd")
  spe = 50000 / 128
  got = _rates(cfg, steps_per_epoch=spe, total=71094,
               steps=[0, 399, 400, 35546, 35547, 53124, 53125])
  assert got == pytest.approx([0.01, 0.01, 0.1, 0.1, 0.01, 0.01, 0.001])


def test_learning_rate_scales_with_batch():
  cfg = _cfg()
  cfg.optimizer.scale_lr_with_batch = True
  cfg.train.batch_size = 512
  assert optim.base_learning_rate(cfg) == pytest.approx(BASE * 4)
  assert optim.learning_rate_value(cfg, 7, STEPS_PER_EPOCH, TOTAL) == \
      pytest.approx(1.6)
  cfg.schedule.values = [0.3, 0.1]  # Absolute values do not scale.
  cfg.schedule.name, cfg.schedule.boundaries_epochs = "piecewise", [1.0]
  assert optim.learning_rate_value(cfg, 0, STEPS_PER_EPOCH, TOTAL) == \
      pytest.approx(0.3)


def test_ftrl_with_warmup_is_refused():
  cfg = _cfg(warmup_epochs=1.0)
  cfg.optimizer.name = "ftrl"
  with pytest.raises(ConfigError, match="warmup_epochs=0"):
    config_lib.validate(cfg)


# ------------------------------------------------------------ weight decay

def _decay_graph(on: str, wd: float = 1e-3, name: str = "convnet"):
  """Builds a model and model_fn's weight-decay term; returns names and value."""
  cfg = config_lib.ExperimentConfig()
  cfg.model.name = name
  cfg.train.weight_decay, cfg.train.weight_decay_on = wd, on
  with tf.Graph().as_default():
    nets.build(cfg.model, 10)(tf.zeros([2, 32, 32, 3]), True)
    variables = v1.trainable_variables()
    model_fn_lib._add_weight_decay(cfg, variables)
    terms = v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      values = dict(zip([v.op.name for v in variables], sess.run(variables)))
      total = float(sess.run(tf.add_n(terms)))
  chosen = {t.op.name.rsplit("_decay", 1)[0] for t in terms}
  return values, chosen, total


@pytest.mark.parametrize("on", config_lib.WEIGHT_DECAY_ON)
def test_weight_decay_choices(on):
  values, chosen, total = _decay_graph(on)
  names = {n.replace("/", "_"): n for n in values}
  picked = {names[c] for c in chosen}
  kernels = {n for n in values if n.endswith("/kernel")}
  dense = {n for n in kernels if values[n].ndim == 2}
  want = {"all": set(values), "kernels": kernels, "dense_kernels": dense}[on]
  assert picked == want
  assert "convnet/local3/bias" not in picked or on == "all"
  # The term is wd * sum(v ** 2) / 2 over exactly those variables.
  expected = 1e-3 * sum(float(np.sum(values[n].astype(np.float64) ** 2)) / 2
                        for n in want)
  assert total == pytest.approx(expected, rel=1e-4)


def test_resnet_kernel_decay_skips_batch_norm():
  values, chosen, _ = _decay_graph("kernels", name="tiny")
  names = {n.replace("/", "_"): n for n in values}
  assert {names[c] for c in chosen} == {"tiny/conv/kernel", "tiny/conv2/kernel",
                                         "tiny/logits/kernel"}


def test_decayed_variables_for_adamw_follow_weight_decay_on():
  with tf.Graph().as_default():
    cfg = config_lib.ExperimentConfig()
    cfg.model.name = "tiny"
    nets.build(cfg.model, 10)(tf.zeros([2, 32, 32, 3]), True)
    names = [v.op.name for v in optim.decayed_variables(
        v1.trainable_variables(), "dense_kernels")]
  assert names == ["tiny/logits/kernel"]


# ---------------------------------------------------------- label smoothing

@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_label_smoothing_matches_formula(smoothing):
  logits = np.array([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 3.0, -2.0]], np.float32)
  labels = np.array([0, 2])
  k = logits.shape[1]
  log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
  target = np.full_like(logits, smoothing / k)
  target[np.arange(2), labels] += 1 - smoothing
  want = float(np.mean(-np.sum(target * log_p, axis=1)))
  with tf.Graph().as_default():
    loss = model_fn_lib._cross_entropy(tf.constant(labels, tf.int32),
                                       tf.constant(logits), k, smoothing)
    with v1.Session() as sess:
      assert sess.run(loss) == pytest.approx(want, rel=1e-5)
