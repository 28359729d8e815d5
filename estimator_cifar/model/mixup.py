"""Mixup (Zhang et al. 2018): train on blends of image pairs and of their labels.

Each training step draws one lam ~ Beta(alpha, alpha) and pairs the batch
with itself reversed: the batch is already in random order, so reversal is a
random pairing that costs no gather. Images become lam * x + (1 - lam) * x',
targets lam * one_hot(y) + (1 - lam) * one_hot(y'); label smoothing then
applies to the blended targets. Evaluation, export and predict never mix.
"""

import tensorflow as tf


def beta(alpha: float, seed: int | None = None) -> tf.Tensor:
  """One draw of Beta(alpha, alpha), as the ratio of two Gamma(alpha) draws."""
  first = tf.random.gamma([], alpha, seed=seed)
  second = tf.random.gamma([], alpha, seed=None if seed is None else seed + 1)
  return first / (first + second)


def mix(images: tf.Tensor, labels: tf.Tensor, num_classes: int, alpha: float,
        seed: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
  """(blended float images, blended one-hot targets [B, num_classes])."""
  lam = beta(alpha, seed)
  targets = tf.one_hot(labels, num_classes)
  blended = lam * images + (1.0 - lam) * tf.reverse(images, axis=[0])
  return blended, lam * targets + (1.0 - lam) * tf.reverse(targets, axis=[0])
