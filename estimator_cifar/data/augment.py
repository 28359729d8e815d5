"""Named image distortions, applied in one fixed order whatever the list order.

Training: crop (pad_crop | random_crop) -> flip -> trivial_augment ->
brightness -> contrast -> standardize -> cutout. Crop and flip run on uint8
(four times less memory traffic than float); the photometric ops need float.
Eval has no randomness: a central crop to `image_size`, then the same
standardization. The eval transform is also what the exported SavedModel runs
on raw uint8 images.

Random brightness and contrast are mostly undone by per-image standardization
(tensorflow#1458), so only the tutorial recipe keeps them.
"""

import tensorflow as tf

from estimator_cifar.config import DataConfig
from estimator_cifar.data import trivial_augment


def train_transform(image: tf.Tensor, cfg: DataConfig, seed: int | None = None) -> tf.Tensor:
  """Distorts one uint8 [32, 32, 3] image into a float32 [S, S, 3] one.

  pad_crop pads by `data.pad` (zeros) and crops `image_size`; random_crop
  crops `image_size` from the unpadded image (a no-op at 32). With `seed`,
  each random op gets its own op seed (10 * seed + k): two ops sharing one seed
  draw the same numbers, which would tie the flip to the crop offset.
  """
  ops, size = set(cfg.augment), cfg.image_size
  if "pad_crop" in ops:
    image = tf.image.pad_to_bounding_box(image, cfg.pad, cfg.pad,
                                         32 + 2 * cfg.pad, 32 + 2 * cfg.pad)
    image = tf.image.random_crop(image, [size, size, 3], seed=_op_seed(seed, 1))
  elif "random_crop" in ops or size < 32:
    image = tf.image.random_crop(image, [size, size, 3], seed=_op_seed(seed, 1))
  if "flip" in ops:
    image = tf.image.random_flip_left_right(image, seed=_op_seed(seed, 2))
  image = tf.cast(image, tf.float32)
  if "trivial_augment" in ops:
    image = trivial_augment.apply(image[None], _op_seed(seed, 6),
                                  cfg.trivial_augment_ranges)[0]
  if "brightness" in ops:
    image = tf.image.random_brightness(image, cfg.brightness_delta * 255.0,
                                       seed=_op_seed(seed, 3))
  if "contrast" in ops:
    image = tf.image.random_contrast(image, cfg.contrast_lower,
                                     cfg.contrast_upper, seed=_op_seed(seed, 4))
  image = normalize(image, ops)
  if "cutout" in ops:
    image = cutout(image, cfg.cutout_size, seed=_op_seed(seed, 5))
  return image


def _op_seed(seed: int | None, k: int) -> int | None:
  return None if seed is None else seed * 10 + k


def eval_transform(image: tf.Tensor, cfg: DataConfig) -> tf.Tensor:
  """Deterministic: central crop to `image_size`, then normalization."""
  size = cfg.image_size
  if size < image.shape[-2]:
    image = tf.image.resize_with_crop_or_pad(image, size, size)
  return normalize(tf.cast(image, tf.float32), set(cfg.augment))


def normalize(image: tf.Tensor, ops: set[str]) -> tf.Tensor:
  """Per-image standardization if `ops` has "standardize", else x / 255."""
  if "standardize" in ops:
    return tf.image.per_image_standardization(image)
  return image / 255.0


def cutout(image: tf.Tensor, size: int, seed: int | None = None) -> tf.Tensor:
  """Zeroes one random `size` x `size` square (DeVries & Taylor 2017).

  The square's centre is uniform over the image, so it may hang off the edge,
  as in the paper. Zero is the mean after standardization.
  """
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  # One draw for both coordinates: two ops with the same seed would give
  # cy == cx, a square always on the diagonal.
  centre = tf.random.uniform([2], 0, 1, seed=seed)
  cy = tf.cast(centre[0] * tf.cast(h, tf.float32), tf.int32)
  cx = tf.cast(centre[1] * tf.cast(w, tf.float32), tf.int32)
  top, left = cy - size // 2, cx - size // 2
  ys, xs = tf.range(h)[:, None], tf.range(w)[None, :]
  inside = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
  return image * tf.cast(~inside, image.dtype)[:, :, None]
