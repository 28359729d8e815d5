"""augment.py's named distortions applied to a whole batch at once.

The same options, order and distributions as `augment.train_transform`
(crop -> flip -> trivial_augment -> brightness -> contrast -> standardize ->
cutout), each drawn independently per image, but computed with one set of ops
per batch instead of one per image: the per-image map costs tf.data a
function call and some twenty small ops per image, which is what limits the
input pipeline on a fast accelerator (docs/performance.md).

Eval needs no batch version: augment.eval_transform already takes batches.
Crop and flip are a single gather on the uint8 batch (a padded image's rows at
random offsets, then its columns at random offsets, reversed where flipped), so
only the crop is ever converted to float.
"""

import tensorflow as tf

from estimator_cifar.config import DataConfig
from estimator_cifar.data import augment, trivial_augment


def train_transform(images: tf.Tensor, cfg: DataConfig,
                    seed: int | None = None) -> tf.Tensor:
  """Distorts uint8 [B, 32, 32, 3] images into float32 [B, S, S, 3] ones."""
  ops = set(cfg.augment)
  images = crop_and_flip(images, cfg, seed)
  images = tf.cast(images, tf.float32)
  batch = tf.shape(images)[0]
  if "trivial_augment" in ops:
    images = trivial_augment.apply(images, seed, cfg.trivial_augment_ranges)
  if "brightness" in ops:
    delta = cfg.brightness_delta * 255.0
    images += tf.random.uniform([batch, 1, 1, 1], -delta, delta, seed=seed)
  if "contrast" in ops:
    factor = tf.random.uniform([batch, 1, 1, 1], cfg.contrast_lower,
                               cfg.contrast_upper, seed=seed)
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    images = (images - mean) * factor + mean
  # augment's own normalization (it takes batches): the two paths stay alike.
  images = augment.normalize(images, ops)
  if "cutout" in ops:
    images = cutout(images, cfg.cutout_size, seed)
  return images


def crop_and_flip(images: tf.Tensor, cfg: DataConfig,
                  seed: int | None = None) -> tf.Tensor:
  """The crop (pad_crop | random_crop) and flip of each image, as one gather.

  Offsets are uniform over every position of an `image_size` window in the
  (padded) image, and each image is flipped with probability 1/2, as
  tf.image.random_crop and random_flip_left_right do per image.
  """
  ops, size = set(cfg.augment), cfg.image_size
  side = images.shape[1]
  pad = cfg.pad if "pad_crop" in ops else 0
  crop = "pad_crop" in ops or "random_crop" in ops or size < side
  if not crop and "flip" not in ops:
    return images
  if pad:
    images = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
  batch = tf.shape(images)[0]
  limit = side + 2 * pad - size  # Offsets 0..limit.
  if crop:
    offsets = tf.random.uniform([2, batch, 1], 0, limit + 1, tf.int32, seed=seed)
  else:
    offsets = tf.zeros([2, batch, 1], tf.int32)
  steps = tf.range(size)[None, :]
  rows, cols = offsets[0] + steps, offsets[1] + steps
  if "flip" in ops:
    flip = tf.random.uniform([batch, 1], seed=seed) < 0.5
    cols = tf.where(flip, offsets[1] + (size - 1) - steps, cols)
  images = tf.gather(images, rows, axis=1, batch_dims=1)
  return tf.gather(images, cols, axis=2, batch_dims=1)


def cutout(images: tf.Tensor, size: int, seed: int | None = None) -> tf.Tensor:
  """Zeroes one random `size` x `size` square per image (see augment.cutout)."""
  shape = tf.shape(images)
  batch, h, w = shape[0], shape[1], shape[2]
  cy = tf.random.uniform([batch, 1, 1], 0, h, tf.int32, seed=seed)
  cx = tf.random.uniform([batch, 1, 1], 0, w, tf.int32, seed=seed)
  top, left = cy - size // 2, cx - size // 2
  ys, xs = tf.range(h)[None, :, None], tf.range(w)[None, None, :]
  inside = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
  return images * tf.cast(~inside, images.dtype)[..., None]
