"""Test-time augmentation: `eval.tta` (config.EVAL_TTA) for eval, export, predict.

- `none`: the network's logits on the image.
- `flip`: the mean of the logits on the image and on its left-right mirror.
- `flip_translate`: airbench's multi-view average: half the weight on `flip`
  of the image, a quarter each on `flip` of the image shifted one pixel up-left
  and one down-right (reflect-padded), six views in all.
Every view goes through the network in one batch: batch norm uses its moving
statistics outside training, so each image's logits do not depend on the rest
of the batch, and the weights are built once.
Training never averages (model_fn calls this outside TRAIN only).
"""

import tensorflow as tf


def _translated(images: tf.Tensor, shift: int) -> list[tf.Tensor]:
  """The images moved by -shift and +shift pixels on both axes (reflect pad)."""
  padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]],
                  mode="REFLECT")
  far = 2 * shift
  return [padded[:, :-far, :-far], padded[:, far:, far:]]


def logits(network, images: tf.Tensor, tta: str) -> tf.Tensor:
  """float32 logits [N, C] of `network(images, training=False)` under `tta`."""
  if tta == "none":
    return tf.cast(network(images, False), tf.float32)
  if tta == "flip":
    views, weights = [images], [1.0]
  elif tta == "flip_translate":
    views, weights = [images, *_translated(images, 1)], [0.5, 0.25, 0.25]
  else:
    raise ValueError(f"unknown eval.tta {tta}")
  views += [tf.image.flip_left_right(v) for v in views]
  outputs = tf.split(tf.cast(network(tf.concat(views, 0), False), tf.float32),
                     len(views))
  pairs = zip(outputs[:len(weights)], outputs[len(weights):])
  return tf.add_n([w * (a + b) / 2.0 for w, (a, b) in zip(weights, pairs)])
