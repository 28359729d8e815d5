"""A tiny convnet for tests and smoke runs: two strided convs with BN, linear."""

import tensorflow as tf

from estimator_cifar.config import ModelConfig
from estimator_cifar.model.nets import layers


def tiny(cfg: ModelConfig, num_classes: int):
  """Returns `fn(images, training) -> logits`: 2 x (conv3x3/2, BN, ReLU), pool, linear."""

  def fn(images, training):
    x = images
    for i, filters in enumerate((8, 16)):
      suffix = "" if i == 0 else str(i + 1)
      x = layers.conv2d(x, filters, 3, 2, "conv" + suffix)
      x = tf.nn.relu(layers.batch_norm(x, training, "bn" + suffix,
                                       cfg.bn_momentum, cfg.bn_epsilon))
    x = tf.cast(layers.global_avg_pool(x), tf.float32)
    return layers.dense(x, num_classes, "logits")

  return fn
