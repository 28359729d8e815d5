"""airbench's network (Jordan 2024, airbench94): wide, shallow, no shortcuts.

A 2x2 conv with 24 filters (valid padding) fixed to whiten the images' 2x2
patches (computed from the first training batch), then three groups of
conv3x3 -> max-pool 2 -> BN -> activation -> conv3x3 -> BN -> activation at
64, 256 and 256 filters, a global max-pool, a linear layer without bias and
logits scaled by 1/9. Differences from airbench: the whitening comes from
the first batch (airbench: 5,000 training images) and its bias trains
throughout (airbench: the first 3 epochs), batch norm keeps a learned scale,
and the activation is ReLU (airbench's GELU), so the activation summaries
see it. About 3x the FLOPs of ResNet-20.
"""

import tensorflow as tf

from estimator_cifar.config import ModelConfig
from estimator_cifar.model.nets import layers

WIDTHS = (64, 256, 256)
LOGIT_SCALE = 1.0 / 9.0
WHITENING_EPS = 5e-4  # airbench's: keeps the smallest eigenvalues in bounds.
v1 = tf.compat.v1


def _whitening_kernel(images):
  """The 2x2 kernel [2, 2, 3, 24] that whitens the images' 2x2 patches.

  airbench's: the eigenvectors of the patches' (uncentered) covariance, each
  scaled by 1 / sqrt(its eigenvalue + eps), and their negatives.
  """
  patches = tf.image.extract_patches(
      tf.cast(images, tf.float32), [1, 2, 2, 1], [1, 1, 1, 1], [1, 1, 1, 1],
      "VALID")
  flat = tf.reshape(patches, [-1, 12])  # Each patch as [row, column, channel].
  covariance = tf.matmul(flat, flat, transpose_a=True) / tf.cast(
      tf.shape(flat)[0], tf.float32)
  values, vectors = tf.linalg.eigh(covariance)
  filters = tf.reshape(tf.transpose(vectors / tf.sqrt(values + WHITENING_EPS)),
                       [12, 2, 2, 3])
  filters = tf.transpose(filters, [1, 2, 3, 0])
  return tf.concat([filters, -filters], axis=-1)


def _whitening_stem(images, training):
  """A 2x2 conv (valid padding) with a learned bias and a fixed whitening kernel.

  The kernel is not trained: the first training step computes it from its
  batch and stores it (an UPDATE_OPS assignment, so it is checkpointed,
  restored and exported like any variable); every later step, eval and
  export read it as stored.
  """
  # Under tf.distribute every replica stores the first replica's kernel.
  fixed = dict(trainable=False,
               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
  with v1.variable_scope("stem"):
    kernel = v1.get_variable("kernel", [2, 2, 3, 24], tf.float32,
                             v1.zeros_initializer(), **fixed)
    # 1 once the kernel is computed (float32, as every variable here is).
    computed = v1.get_variable("computed", [], tf.float32,
                               v1.zeros_initializer(), **fixed)
    bias = v1.get_variable("bias", [24], tf.float32, v1.zeros_initializer())
    if training:
      value = tf.cond(computed > 0, lambda: tf.identity(kernel),
                      lambda: _whitening_kernel(images))
      # The flag is set only after the kernel is stored: unordered, the two
      # assignments race and the flag can win, storing the zeros it read.
      with tf.control_dependencies([kernel.assign(value)]):
        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, computed.assign(1.0))
    else:
      value = kernel
    y = tf.nn.conv2d(images, tf.cast(value, images.dtype), 1, "VALID")
    return tf.nn.bias_add(y, tf.cast(bias, images.dtype))


def airbench(cfg: ModelConfig, num_classes: int):
  """Returns `fn(images, training) -> logits` for airbench's network."""

  def bn_relu(x, training, name):
    return tf.nn.relu(layers.batch_norm(x, training, name, cfg.bn_momentum,
                                        cfg.bn_epsilon))

  def fn(images, training):
    x = tf.nn.relu(_whitening_stem(images, training))
    for group, filters in enumerate(WIDTHS, start=1):
      with v1.variable_scope(f"group{group}"):
        x = layers.conv2d(x, filters, 3, 1, "conv1")
        x = bn_relu(tf.nn.max_pool2d(x, 2, 2, "VALID"), training, "bn1")
        x = bn_relu(layers.conv2d(x, filters, 3, 1, "conv2"), training, "bn2")
    x = tf.cast(tf.reduce_max(x, axis=[1, 2]), tf.float32)
    return LOGIT_SCALE * layers.dense(x, num_classes, "logits", use_bias=False)

  return fn
