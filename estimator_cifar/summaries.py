"""TensorBoard summaries built inside model_fn (train) under readable tags.

Estimator's SummarySaverHook writes everything created here every
`summary.save_steps` steps (RunConfig.save_summary_steps); the per-step cost is
only the summary ops' inputs, which the forward pass already computes.
"""

import tensorflow as tf

from estimator_cifar.config import ExperimentConfig

v1 = tf.compat.v1


def train_summaries(cfg: ExperimentConfig, *, images, labels, logits, rate,
                    cross_entropy, weight_decay, total_loss, grads_and_vars,
                    grad_norm, ema) -> None:
  """Scalars for losses, learning rate, batch accuracy and gradient norm."""
  del cfg, images, grads_and_vars, ema  # Used by the richer summaries.
  v1.summary.scalar("learning_rate", rate)
  v1.summary.scalar("losses/cross_entropy", cross_entropy)
  v1.summary.scalar("losses/weight_decay", weight_decay)
  v1.summary.scalar("losses/total", total_loss)
  v1.summary.scalar("gradients/global_norm", grad_norm)
  correct = tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels),
                    tf.float32)
  v1.summary.scalar("train/accuracy", tf.reduce_mean(correct))
  k = min(5, logits.shape[-1])
  v1.summary.scalar("train/top_5_accuracy", tf.reduce_mean(
      tf.cast(tf.math.in_top_k(labels, logits, k), tf.float32)))
