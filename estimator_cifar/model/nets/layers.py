"""Graph-mode layers on `tf.compat.v1.get_variable`, with the names users see.

Hand-rolled instead of Keras layers for three reasons: variable names stay short
and stable (`resnet/stage1/block0/conv1/kernel`), which warm-start rules and
checkpoint tools rely on; batch norm always takes the fused kernel and puts its
moving-statistics updates in `UPDATE_OPS`, where the train_op waits for them;
and variables are float32 while the computation may be float16/bfloat16
(mixed precision), each variable cast at its point of use.
"""

import tensorflow as tf

v1 = tf.compat.v1

HE_NORMAL = v1.variance_scaling_initializer(
    scale=2.0, mode="fan_in", distribution="truncated_normal")


def _variable(name, shape, initializer, trainable=True):
  return v1.get_variable(name, shape, tf.float32, initializer, trainable=trainable)


def conv2d(x, filters: int, kernel_size: int, strides: int = 1, name: str = "conv",
           use_bias: bool = False, initializer=HE_NORMAL, bias_init: float = 0.0):
  """A 'SAME'-padded 2-D convolution (NHWC)."""
  with v1.variable_scope(name):
    kernel = _variable("kernel", [kernel_size, kernel_size, x.shape[-1], filters],
                       initializer)
    y = tf.nn.conv2d(x, tf.cast(kernel, x.dtype), strides, "SAME")
    if use_bias:
      bias = _variable("bias", [filters], v1.constant_initializer(bias_init))
      y = tf.nn.bias_add(y, tf.cast(bias, x.dtype))
    return y


def dense(x, units: int, name: str = "dense", use_bias: bool = True,
          initializer=HE_NORMAL, bias_init: float = 0.0):
  """A fully connected layer on a [N, D] input."""
  with v1.variable_scope(name):
    kernel = _variable("kernel", [x.shape[-1], units], initializer)
    y = tf.matmul(x, tf.cast(kernel, x.dtype))
    if use_bias:
      bias = _variable("bias", [units], v1.constant_initializer(bias_init))
      y = tf.nn.bias_add(y, tf.cast(bias, x.dtype))
    return y


def batch_norm(x, training: bool, name: str = "bn", momentum: float = 0.997,
               epsilon: float = 1e-5, gamma_init: float = 1.0):
  """Fused batch norm; in training its moving-stat updates go to UPDATE_OPS.

  The moving statistics are ON_READ/MEAN variables so that under a
  MirroredStrategy each replica updates its own copy and reads average them
  (as Keras does); without a strategy this changes nothing.
  """
  with v1.variable_scope(name):
    channels = x.shape[-1]
    gamma = _variable("gamma", [channels], v1.constant_initializer(gamma_init))
    beta = _variable("beta", [channels], v1.zeros_initializer())
    stats = dict(dtype=tf.float32, trainable=False,
                 synchronization=tf.VariableSynchronization.ON_READ,
                 aggregation=tf.VariableAggregation.MEAN)
    moving_mean = v1.get_variable("moving_mean", [channels],
                                  initializer=v1.zeros_initializer(), **stats)
    moving_var = v1.get_variable("moving_variance", [channels],
                                 initializer=v1.ones_initializer(), **stats)
    if not training:
      y, _, _ = v1.nn.fused_batch_norm(x, gamma, beta, moving_mean, moving_var,
                                       epsilon=epsilon, is_training=False)
      return y
    y, mean, var = v1.nn.fused_batch_norm(x, gamma, beta, epsilon=epsilon,
                                          is_training=True)
    decay = 1.0 - momentum
    v1.add_to_collection(v1.GraphKeys.UPDATE_OPS,
                         moving_mean.assign_sub((moving_mean - mean) * decay))
    v1.add_to_collection(v1.GraphKeys.UPDATE_OPS,
                         moving_var.assign_sub((moving_var - var) * decay))
    return y


def global_avg_pool(x):
  return tf.reduce_mean(x, axis=[1, 2])
