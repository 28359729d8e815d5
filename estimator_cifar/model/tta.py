"""Test-time augmentation: `eval.tta` (config.EVAL_TTA) for eval, export, predict.

- `none`: the network's logits on the image.
- `flip`: the mean of the logits on the image and on its left-right mirror.
  Both halves go through the network as one batch of 2N: batch norm uses its
  moving statistics outside training, so each image's logits do not depend on
  the rest of the batch, and the weights are built once.
Training never averages (model_fn calls this outside TRAIN only).
"""

import tensorflow as tf


def logits(network, images: tf.Tensor, tta: str) -> tf.Tensor:
  """float32 logits [N, C] of `network(images, training=False)` under `tta`."""
  if tta == "none":
    return tf.cast(network(images, False), tf.float32)
  if tta != "flip":
    raise ValueError(f"unknown eval.tta {tta}")
  both = tf.concat([images, tf.image.flip_left_right(images)], axis=0)
  plain, mirrored = tf.split(tf.cast(network(both, False), tf.float32), 2)
  return (plain + mirrored) / 2.0
