"""The classic TensorFlow CIFAR-10 tutorial convnet (tutorials/image/cifar10).

conv5x5-64 -> max-pool 3x3/2 -> LRN -> conv5x5-64 -> LRN -> max-pool 3x3/2 ->
FC 384 -> FC 192 -> linear, with the tutorial's initializers (truncated normal
stddev 5e-2 for convs, 0.04 for FC, 1/192 for the output; biases 0, 0.1).
"""

import tensorflow as tf

from estimator_cifar.config import ModelConfig
from estimator_cifar.model.nets import layers

v1 = tf.compat.v1


def _lrn(x):
  # depth_radius 4, bias 1, alpha 0.001/9, beta 0.75: the tutorial's values.
  return tf.cast(tf.nn.lrn(tf.cast(x, tf.float32), 4, bias=1.0,
                           alpha=0.001 / 9.0, beta=0.75), x.dtype)


def convnet(cfg: ModelConfig, num_classes: int):
  """Returns `fn(images, training) -> logits`; `training` changes nothing."""
  del cfg

  def fn(images, training):
    del training
    conv_init = v1.truncated_normal_initializer(stddev=5e-2)
    x = tf.nn.relu(layers.conv2d(images, 64, 5, 1, "conv1", True, conv_init, 0.0))
    x = _lrn(tf.nn.max_pool2d(x, 3, 2, "SAME"))
    x = tf.nn.relu(layers.conv2d(x, 64, 5, 1, "conv2", True, conv_init, 0.1))
    x = tf.nn.max_pool2d(_lrn(x), 3, 2, "SAME")
    x = tf.reshape(x, [-1, x.shape[1] * x.shape[2] * x.shape[3]])
    fc_init = v1.truncated_normal_initializer(stddev=0.04)
    x = tf.nn.relu(layers.dense(x, 384, "local3", True, fc_init, 0.1))
    x = tf.nn.relu(layers.dense(x, 192, "local4", True, fc_init, 0.1))
    x = tf.cast(x, tf.float32)
    return layers.dense(x, num_classes, "softmax_linear", True,
                        v1.truncated_normal_initializer(stddev=1 / 192.0), 0.0)

  return fn
