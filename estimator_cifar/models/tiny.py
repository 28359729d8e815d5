"""A tiny convnet for tests and smoke runs: one conv + batch norm, one linear."""

import tensorflow as tf

from estimator_cifar.config import ModelConfig
from estimator_cifar.models import layers


def tiny(cfg: ModelConfig, num_classes: int):
  """Returns `fn(images, training) -> logits`: conv3x3-8, BN, ReLU, pool, linear."""

  def fn(images, training):
    x = layers.conv2d(images, 8, 3, 2, "conv")
    x = tf.nn.relu(layers.batch_norm(x, training, "bn", cfg.bn_momentum,
                                     cfg.bn_epsilon))
    x = tf.cast(layers.global_avg_pool(x), tf.float32)
    return layers.dense(x, num_classes, "logits")

  return fn
