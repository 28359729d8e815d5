"""train.mixup_alpha: blends of image pairs and of their targets, in training only.

The blends and the loss are checked against numpy formulas written from
mixup.py's docstring; a seeded run with K steps per loop must match K=1.
"""

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import config as config_lib
from estimator_cifar.engine import modes
from estimator_cifar.errors import ConfigError
from estimator_cifar.model import mixup
from estimator_cifar.model import model_fn as model_fn_lib
from tests.testutil import tiny_config

v1 = tf.compat.v1


def _softmax_ce(targets, logits):
  log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
  return float(np.mean(-np.sum(targets * log_p, axis=1)))


def test_mix_blends_each_image_and_target_with_the_reversed_batch():
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (5, 4, 4, 3)).astype(np.float32)
  labels = np.array([0, 3, 1, 1, 2])
  with tf.Graph().as_default():
    v1.set_random_seed(1)
    mixed, targets = mixup.mix(tf.constant(images), tf.constant(labels), 4, 0.4, 7)
    lam = tf.reduce_sum(targets[0] * tf.one_hot(labels[0], 4))
    with v1.Session() as sess:
      lam, mixed, targets = sess.run([lam, mixed, targets])
  one_hot = np.eye(4)[labels]
  np.testing.assert_allclose(mixed, lam * images + (1 - lam) * images[::-1],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(targets, lam * one_hot + (1 - lam) * one_hot[::-1],
                             atol=1e-6)
  assert 0.0 < lam < 1.0


def test_beta_draws_have_the_mean_and_variance_of_beta_alpha_alpha():
  alpha, draws = 0.4, 3000
  with tf.Graph().as_default():
    lam = mixup.beta(alpha, seed=5)
    many = tf.stack([lam])  # One draw per run: the op as training uses it.
    with v1.Session() as sess:
      values = np.array([sess.run(many)[0] for _ in range(draws)])
  assert ((values > 0) & (values < 1)).all()
  # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)) = 0.139 at a = 0.4.
  assert abs(values.mean() - 0.5) < 0.03
  assert values.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.12)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_loss_with_blended_targets_matches_formula(smoothing):
  logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], np.float32)
  lam, k = 0.3, 3
  one_hot = np.eye(k)[[0, 2]]
  targets = lam * one_hot + (1 - lam) * one_hot[::-1]
  smoothed = targets * (1 - smoothing) + smoothing / k
  with tf.Graph().as_default():
    loss = model_fn_lib._cross_entropy(
        tf.constant([0, 2]), tf.constant(logits), k, smoothing,
        tf.constant(targets, tf.float32))
    with v1.Session() as sess:
      assert sess.run(loss) == pytest.approx(_softmax_ce(smoothed, logits), rel=1e-5)


def test_negative_alpha_is_refused():
  cfg = config_lib.ExperimentConfig()
  cfg.train.mixup_alpha = -0.2
  with pytest.raises(ConfigError, match="train.mixup_alpha"):
    config_lib.validate(cfg)


@pytest.mark.slow
def test_k_steps_per_loop_blend_as_single_steps(cifar10_dir, tmp_path):
  """Seeded, the blends inside a K=2 loop are the blends of K=1's steps; the
  eval (never mixed) then scores both checkpoints alike."""
  finals, losses = {}, {}
  for k in (1, 2):
    overrides = (f"train.steps_per_loop={k}", "train.steps=8", "train.seed=3",
                 "train.mixup_alpha=0.4")
    model_dir = str(tmp_path / f"k{k}")
    modes.run(tiny_config(*overrides), model_dir, "train", cifar10_dir)
    reader = tf.train.load_checkpoint(model_dir)
    finals[k] = {name: reader.get_tensor(name)
                 for name, _ in tf.train.list_variables(model_dir)}
    losses[k] = modes.run(tiny_config(*overrides), model_dir, "eval",
                          cifar10_dir)["loss"]
  # Without mixup the same seed trains to other weights: the blend is applied.
  plain = str(tmp_path / "plain")
  modes.run(tiny_config("train.steps=8", "train.seed=3"), plain, "train", cifar10_dir)
  plain_kernel = tf.train.load_checkpoint(plain).get_tensor("tiny/logits/kernel")
  for name in finals[1]:
    np.testing.assert_allclose(finals[2][name], finals[1][name], atol=1e-4,
                               err_msg=name)
  assert abs(losses[1] - losses[2]) < 1e-4
  assert np.abs(plain_kernel - finals[1]["tiny/logits/kernel"]).max() > 1e-3
