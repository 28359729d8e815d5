"""model_fn in TRAIN/EVAL/PREDICT: shapes, dtypes, losses, UPDATE_OPS and EMA."""

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.model.model_fn import model_fn
from tests.testutil import tiny_config

v1 = tf.compat.v1
ModeKeys = tf.estimator.ModeKeys
BATCH = 4


def _spec(mode, cfg, num_classes=10):
  images = tf.random.uniform([BATCH, 32, 32, 3], seed=1)
  labels = tf.constant([0, 1, 2, 3], tf.int32)
  params = {"config": cfg, "num_classes": num_classes, "steps_per_epoch": 10.0,
            "max_steps": 100}
  return model_fn({"images": images}, labels, mode, params)


@pytest.mark.parametrize("model", ["tiny", "resnet", "convnet"])
def test_predict_outputs(model):
  size = 24 if model == "convnet" else 32
  cfg = tiny_config(f"model.name={model}", "model.depth=8", f"data.image_size={size}")
  with tf.Graph().as_default():
    spec = _spec(ModeKeys.PREDICT, cfg)
    p = spec.predictions
    assert p["classes"].dtype == tf.int64 and p["classes"].shape == (BATCH,)
    assert p["probabilities"].shape == (BATCH, 10)
    assert p["logits"].dtype == tf.float32
    assert "serving_default" in spec.export_outputs


def test_eval_metrics_and_losses():
  cfg = tiny_config("train.weight_decay=0.01")
  with tf.Graph().as_default():
    spec = _spec(ModeKeys.EVAL, cfg)
    assert {"accuracy", "top_5_accuracy", "cross_entropy"} <= set(spec.eval_metric_ops)
    assert spec.loss.shape == () and spec.loss.dtype == tf.float32
    # Cross entropy in LOSSES, weight decay in REGULARIZATION_LOSSES.
    assert len(v1.get_collection(v1.GraphKeys.LOSSES)) == 1
    decays = v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
    kernels = [v for v in v1.trainable_variables() if v.op.name.endswith("/kernel")]
    assert len(decays) == len(kernels) == 3  # conv, conv2 and logits kernels.
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      ce, decay, total = sess.run([v1.get_collection(v1.GraphKeys.LOSSES)[0],
                                   tf.add_n(decays), spec.loss])
      expected = 0.01 * sum(0.5 * np.sum(sess.run(k) ** 2) for k in kernels)
      assert decay == pytest.approx(expected, rel=1e-5)
      assert total == pytest.approx(ce + decay, rel=1e-5)


def test_train_step_runs_update_ops_then_ema():
  cfg = tiny_config("ema.decay=0.9", "model.bn_momentum=0.5")
  with tf.Graph().as_default():
    spec = _spec(ModeKeys.TRAIN, cfg)
    gvars = {v.op.name: v for v in v1.global_variables()}
    mean = gvars["tiny/bn/moving_mean"]
    kernel = gvars["tiny/conv/kernel"]
    shadow = gvars["tiny/conv/kernel/ExponentialMovingAverage"]
    assert v1.get_collection(v1.GraphKeys.UPDATE_OPS), "BN updates registered"
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      before = sess.run([mean, kernel, shadow])
      sess.run(spec.train_op)
      after = sess.run([mean, kernel, shadow, v1.train.get_global_step()])
    assert after[3] == 1
    assert not np.allclose(before[0], after[0]), "moving mean must change"
    assert not np.allclose(before[1], after[1]), "weights must change"
    # EMA with num_updates=1: decay = min(0.9, (1 + 1) / (10 + 1)).
    d = min(0.9, 2 / 11)
    np.testing.assert_allclose(after[2], d * before[2] + (1 - d) * after[1],
                               rtol=1e-5, atol=1e-6)


def test_eval_with_ema_restores_shadows():
  cfg = tiny_config("ema.eval_with_ema=true")
  with tf.Graph().as_default():
    spec = _spec(ModeKeys.EVAL, cfg)
    restore = spec.scaffold.saver._var_list
    assert restore["tiny/conv/kernel/ExponentialMovingAverage"].op.name == \
        "tiny/conv/kernel"
    # Non-trainable state (BN statistics, global step) restores as itself.
    assert restore["tiny/bn/moving_mean"].op.name == "tiny/bn/moving_mean"
