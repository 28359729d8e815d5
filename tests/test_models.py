"""Every model: output shape and dtype, per precision; parameter counts by formula."""

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import config as config_lib
from estimator_cifar.errors import ConfigError
from estimator_cifar.model import nets
from estimator_cifar.model.model_fn import COMPUTE_DTYPES
from tests.testutil import resnet_params

v1 = tf.compat.v1

SMALL = {  # Each model at its smallest, to keep the forward passes cheap.
    "resnet": dict(depth=8),
    "wide_resnet": dict(depth=10, width=2, dropout=0.3),
    "convnet": {},
    "tiny": {},
    "airbench": {},
}


def test_every_builtin_network_is_a_model_name_choice():
  assert set(nets.BUILTIN) <= set(config_lib.choices("model.name"))


def test_a_builtin_name_cannot_be_registered_again():
  with pytest.raises(ConfigError, match="taken by a built-in"):
    nets.register_network("resnet")(lambda cfg, num_classes: None)


def _model_cfg(name, **fields):
  cfg = config_lib.ModelConfig(name=name)
  for key, value in fields.items():
    setattr(cfg, key, value)
  return cfg


@pytest.mark.parametrize("precision", config_lib.PRECISIONS)
@pytest.mark.parametrize("name", sorted(SMALL))
def test_output_shape_and_dtype(name, precision):
  cfg = _model_cfg(name, **SMALL[name])
  images = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype(np.float32)
  with tf.Graph().as_default():
    x = tf.cast(tf.constant(images), COMPUTE_DTYPES[precision])
    fn = nets.build(cfg, 7)
    train_logits = fn(x, True)
    with v1.variable_scope(v1.get_variable_scope(), reuse=True):
      eval_logits = fn(x, False)
    # Variables stay float32 whatever the compute dtype (mixed precision).
    assert {v.dtype.base_dtype for v in v1.global_variables()} == {tf.float32}
    assert all(v.op.name.startswith(name + "/") for v in v1.global_variables())
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      train_out, eval_out = sess.run([train_logits, eval_logits])
  for out in (train_out, eval_out):
    assert out.shape == (3, 7)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))


def test_tutorial_convnet_takes_24px_crops():
  with tf.Graph().as_default():
    logits = nets.build(_model_cfg("convnet"), 10)(tf.zeros([2, 24, 24, 3]), False)
    assert logits.shape.as_list() == [2, 10]
    # FC 384 on the 6x6x64 map left by two stride-2 pools of a 24px input.
    (kernel,) = [v for v in v1.global_variables()
                 if v.op.name == "convnet/local3/kernel"]
    assert kernel.shape.as_list() == [6 * 6 * 64, 384]


def _count(cfg, classes=10) -> int:
  with tf.Graph().as_default():
    nets.build(cfg, classes)(tf.zeros([1, 32, 32, 3]), True)
    return sum(int(np.prod(v.shape.as_list())) for v in v1.trainable_variables())


# Deeper ones (56, 110, WRN-28-10) are counted in test_experiments.py, which
# builds every experiment's graph anyway.
@pytest.mark.parametrize("depth,version,classes", [
    (8, 1, 10), (14, 1, 100), (14, 2, 10)])
def test_resnet_parameter_count_follows_formula(depth, version, classes):
  cfg = _model_cfg("resnet", depth=depth, version=version)
  assert _count(cfg, classes) == resnet_params((depth - 2) // 6, (16, 32, 64),
                                               version, classes)


@pytest.mark.parametrize("depth,width", [(10, 1), (10, 4)])
def test_wide_resnet_parameter_count_follows_formula(depth, width):
  cfg = _model_cfg("wide_resnet", depth=depth, width=width)
  widths = tuple(16 * width * m for m in (1, 2, 4))
  assert _count(cfg) == resnet_params((depth - 4) // 6, widths, 2, 10)


def test_parameter_counts_match_the_papers():
  # He et al. 2016 Table 6: 0.27M, 0.85M, 1.7M; Zagoruyko & Komodakis: 36.5M.
  assert resnet_params(3, (16, 32, 64), 1, 10) == 272_474
  assert round(resnet_params(9, (16, 32, 64), 1, 10) / 1e6, 2) == 0.86
  assert round(resnet_params(18, (16, 32, 64), 1, 10) / 1e6, 1) == 1.7
  assert round(resnet_params(4, (160, 320, 640), 2, 10) / 1e6, 1) == 36.5
  assert _count(_model_cfg("resnet", depth=20)) == 272_474


def test_airbench_parameter_count_follows_formula():
  stem = 24  # The bias; the whitening kernel is fixed, not trained.
  groups, width_in = 0, 24
  for width in (64, 256, 256):  # Two 3x3 convs and two BNs (scale, shift).
    groups += 9 * width_in * width + 9 * width * width + 2 * 2 * width
    width_in = width
  assert _count(_model_cfg("airbench")) == stem + groups + 256 * 10  # No bias.


def test_airbench_logits_are_a_ninth_of_the_linear_layer():
  with tf.Graph().as_default():
    logits = nets.build(_model_cfg("airbench"), 10)(tf.zeros([2, 32, 32, 3]), False)
    (linear,) = [op for op in tf.compat.v1.get_default_graph().get_operations()
                 if op.name == "airbench/logits/MatMul"]
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      out, raw = sess.run([logits, linear.outputs[0]])
  np.testing.assert_allclose(out, raw / 9.0, rtol=1e-6)


def test_airbench_whitens_from_the_first_training_batch_and_keeps_it():
  rng = np.random.default_rng(1)
  first, later = rng.normal(size=(2, 8, 32, 32, 3)).astype(np.float32)
  first[..., 1] = 0.8 * first[..., 0] + 0.2 * first[..., 1]  # Correlated.
  with tf.Graph().as_default():
    images = v1.placeholder(tf.float32, [None, 32, 32, 3])
    fn = nets.build(_model_cfg("airbench"), 10)
    fn(images, True)
    updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
    (kernel,) = [v for v in v1.global_variables()
                 if v.op.name == "airbench/stem/kernel"]
    assert kernel not in v1.trainable_variables()
    whitened = tf.nn.conv2d(images, kernel, 1, "VALID")
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      sess.run(updates, {images: first})
      stored, out = sess.run([kernel.value(), whitened], {images: first})
      sess.run(updates, {images: later})
      assert np.array_equal(sess.run(kernel.value()), stored)
  # The first 12 filters whiten the first batch's 2x2 patches: their
  # covariance is the identity but for eps (the rest are the negatives).
  flat = out.reshape(-1, 24)
  np.testing.assert_array_equal(flat[:, 12:], -flat[:, :12])
  covariance = flat[:, :12].T @ flat[:, :12] / len(flat)
  np.testing.assert_allclose(covariance, np.eye(12), atol=0.03)


def test_airbench_trains_with_its_whitening_stored(cifar10_dir, tmp_path):
  # Through the Estimator, two steps in one loop: the first step's kernel is
  # what the checkpoint holds (the flag is set after it, never before).
  from estimator_cifar.engine import modes
  from tests.testutil import tiny_config
  cfg = tiny_config("model.name=airbench", "train.steps=2",
                    "train.steps_per_loop=2")
  modes.run(cfg, str(tmp_path), "train", cifar10_dir)
  reader = tf.train.load_checkpoint(str(tmp_path))
  assert reader.get_tensor("airbench/stem/computed") == 1.0
  kernel = reader.get_tensor("airbench/stem/kernel")
  assert np.abs(kernel).min() > 0
  np.testing.assert_array_equal(kernel[..., 12:], -kernel[..., :12])


def test_depth_version_and_width_change_the_count_as_the_formula_says():
  base = _count(_model_cfg("resnet", depth=8))
  # One more block per stage (depth +6): 4672 + 18560 + 73984 parameters.
  assert _count(_model_cfg("resnet", depth=14)) - base == 4672 + 18560 + 73984
  # v2 drops v1's first BN (32) and the projection BNs (64 + 128), adds a
  # final BN (128); the first blocks of stages 2 and 3 normalize their
  # 16/32-channel input instead of their 32/64-channel output (-32 - 64).
  assert _count(_model_cfg("resnet", depth=8, version=2)) - base == \
      -32 - 64 - 128 + 128 - 32 - 64
  wide1 = _count(_model_cfg("wide_resnet", depth=10, width=1))
  wide2 = _count(_model_cfg("wide_resnet", depth=10, width=2))
  assert wide2 == resnet_params(1, (32, 64, 128), 2, 10)
  assert wide2 > 3.5 * wide1  # Convs dominate and grow as width ** 2.
