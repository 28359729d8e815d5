"""CIFAR ResNets: v1 (He et al. 2016a), v2 pre-activation (He et al. 2016b), WRN.

v1 and v2 have depth 6n+2: a 3x3 conv with 16 filters, three stages of n
two-conv blocks with 16, 32, 64 filters (stride 2 entering stages 2 and 3),
global average pooling, a linear layer. Where the shape changes the shortcut is
a 1x1 projection (option B), as in tensorflow/models and the Keras peer.
Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016) is v2 with depth 6n+4, widths
16k/32k/64k and optional dropout between the two convs of a block.
"""

import tensorflow as tf

from estimator_cifar.config import ModelConfig
from estimator_cifar.model.nets import layers


def resnet(cfg: ModelConfig, num_classes: int):
  """Returns `fn(images, training) -> logits` for ResNet v1/v2 at cfg.depth."""
  blocks = (cfg.depth - 2) // 6
  return _network(cfg, num_classes, blocks, (16, 32, 64), cfg.version, 0.0)


def wide_resnet(cfg: ModelConfig, num_classes: int):
  """Returns `fn(images, training) -> logits` for WRN-depth-width."""
  blocks = (cfg.depth - 4) // 6
  widths = tuple(w * cfg.width for w in (16, 32, 64))
  return _network(cfg, num_classes, blocks, widths, 2, cfg.dropout)


def _network(cfg, num_classes, blocks, widths, version, dropout):

  def bn(x, training, name):
    return layers.batch_norm(x, training, name, cfg.bn_momentum, cfg.bn_epsilon)

  def block_v1(x, filters, stride, training):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
      shortcut = bn(layers.conv2d(x, filters, 1, stride, "shortcut"), training,
                    "shortcut_bn")
    y = tf.nn.relu(bn(layers.conv2d(x, filters, 3, stride, "conv1"), training, "bn1"))
    y = bn(layers.conv2d(y, filters, 3, 1, "conv2"), training, "bn2")
    return tf.nn.relu(y + shortcut)

  def block_v2(x, filters, stride, training):
    pre = tf.nn.relu(bn(x, training, "bn1"))
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
      shortcut = layers.conv2d(pre, filters, 1, stride, "shortcut")
    y = layers.conv2d(pre, filters, 3, stride, "conv1")
    y = tf.nn.relu(bn(y, training, "bn2"))
    if dropout > 0 and training:
      y = tf.nn.dropout(y, rate=dropout)
    return layers.conv2d(y, filters, 3, 1, "conv2") + shortcut

  block = block_v1 if version == 1 else block_v2

  def fn(images, training):
    x = layers.conv2d(images, 16, 3, 1, "initial_conv")
    if version == 1:
      x = tf.nn.relu(bn(x, training, "initial_bn"))
    for stage, filters in enumerate(widths, start=1):
      for i in range(blocks):
        stride = 2 if stage > 1 and i == 0 else 1
        with tf.compat.v1.variable_scope(f"stage{stage}/block{i}"):
          x = block(x, filters, stride, training)
    if version == 2:
      x = tf.nn.relu(bn(x, training, "final_bn"))
    x = tf.cast(layers.global_avg_pool(x), tf.float32)
    return layers.dense(x, num_classes, "logits",
                        initializer=tf.compat.v1.glorot_uniform_initializer())

  return fn
