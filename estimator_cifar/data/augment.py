"""The named distortions: one function per op, one registry that orders them.

`OPS` maps each name `data.augment` may list to its function, and its order is
the order of application, whatever the list's order. Every op works on a
whole batch [B, H, W, C] with its own draws per image: one set of ops per
batch instead of a per-image map, which cost tf.data a function call and some
twenty small ops per image (docs/performance.md).

Ops flagged `on_uint8` (the geometric ones) run before the cast to float, on
a quarter of the memory traffic; the others see float pixels in 0..255. The
result is standardized per image if `standardize` is listed, else x / 255.
Eval has no randomness: a central crop to `image_size`, then the ops flagged
`in_eval`. The eval transform is also what the exported SavedModel runs on
raw uint8 images.

A new op is one function `op(images, cfg, seed) -> images` and one `OPS`
entry (plus its name in config.AUGMENTATIONS, which validates without
TensorFlow).

Random brightness and contrast are mostly undone by per-image standardization
(tensorflow#1458), so only the tutorial recipe keeps them.
"""

import dataclasses
from typing import Callable

import tensorflow as tf

from estimator_cifar.config import DataConfig
from estimator_cifar.data import trivial_augment

# op(images, cfg, seed) -> images, the same batch distorted.
OpFn = Callable[[tf.Tensor, DataConfig, "int | None"], tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Op:
  """One named distortion and where it runs."""
  fn: OpFn
  on_uint8: bool = False   # Runs before the cast to float.
  in_eval: bool = False    # Deterministic: eval and serving run it too.
  normalizes: bool = False  # Its output replaces the x / 255 scaling.


def train_transform(images: tf.Tensor, cfg: DataConfig,
                    seed: int | None = None) -> tf.Tensor:
  """Distorts uint8 [B, H, W, C] images into float32 [B, S, S, C] ones.

  With `seed`, op k of OPS gets its own op seed (10 * seed + k): two ops
  sharing one seed draw the same numbers, which would tie the flip to the crop
  offset.
  """
  chosen = set(cfg.augment)
  if cfg.image_size < images.shape[1] and not chosen & {"pad_crop", "random_crop"}:
    chosen.add("random_crop")  # The model takes image_size: crop somewhere.
  for k, (name, op) in enumerate(OPS.items(), start=1):
    if name in chosen:
      images = op.fn(_as_float(images, op), cfg,
                     None if seed is None else seed * 10 + k)
  return _finish(images, chosen)


def eval_transform(images: tf.Tensor, cfg: DataConfig) -> tf.Tensor:
  """Deterministic: central crop to `image_size`, then the `in_eval` ops."""
  size = cfg.image_size
  if size < images.shape[-2]:
    images = tf.image.resize_with_crop_or_pad(images, size, size)
  chosen = set(cfg.augment)
  for name, op in OPS.items():
    if name in chosen and op.in_eval:
      images = op.fn(_as_float(images, op), cfg, None)
  return _finish(images, chosen)


def _as_float(images: tf.Tensor, op: Op) -> tf.Tensor:
  """Casts to float32 once, for the first op that needs float pixels."""
  return images if op.on_uint8 or images.dtype == tf.float32 else tf.cast(
      images, tf.float32)


def _finish(images: tf.Tensor, chosen: set[str]) -> tf.Tensor:
  """float32 output: x / 255 unless a chosen op normalized the pixels."""
  images = tf.cast(images, tf.float32)
  if any(OPS[name].normalizes for name in chosen):
    return images
  return images / 255.0


def _offsets(images: tf.Tensor, size: int, seed: int | None) -> tf.Tensor:
  """Each image's window [B, size] of rows and of columns, uniform offsets."""
  batch, limit = tf.shape(images)[0], images.shape[1] - size  # Offsets 0..limit.
  # One draw for both axes: two ops with the same seed would give row ==
  # column offsets, windows always on the diagonal.
  offsets = tf.random.uniform([2, batch, 1], 0, limit + 1, tf.int32, seed=seed)
  return offsets + tf.range(size)[None, None, :]


def random_crop(images: tf.Tensor, cfg: DataConfig,
                seed: int | None = None) -> tf.Tensor:
  """A random `image_size` window of each image, as one gather per axis."""
  rows, cols = tf.unstack(_offsets(images, cfg.image_size, seed))
  images = tf.gather(images, rows, axis=1, batch_dims=1)
  return tf.gather(images, cols, axis=2, batch_dims=1)


def pad_crop(images: tf.Tensor, cfg: DataConfig,
             seed: int | None = None) -> tf.Tensor:
  """Zero-pads each side by `data.pad`, then crops at random (random_crop)."""
  pad = cfg.pad
  padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
  return random_crop(padded, cfg, seed)


def flip(images: tf.Tensor, cfg: DataConfig, seed: int | None = None) -> tf.Tensor:
  """Mirrors each image left-right with probability 1/2."""
  del cfg
  flipped = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], seed=seed) < 0.5
  return tf.where(flipped, tf.reverse(images, axis=[2]), images)


def trivial(images: tf.Tensor, cfg: DataConfig,
            seed: int | None = None) -> tf.Tensor:
  """TrivialAugment with `data.trivial_augment_ranges` (trivial_augment.py)."""
  return trivial_augment.apply(images, seed, cfg.trivial_augment_ranges)


def brightness(images: tf.Tensor, cfg: DataConfig,
               seed: int | None = None) -> tf.Tensor:
  """Adds one uniform delta in +-`brightness_delta` (of 255) to each image."""
  delta = cfg.brightness_delta * 255.0
  return images + tf.random.uniform([tf.shape(images)[0], 1, 1, 1], -delta,
                                    delta, seed=seed)


def contrast(images: tf.Tensor, cfg: DataConfig,
             seed: int | None = None) -> tf.Tensor:
  """Scales each channel about its mean by one uniform factor per image."""
  factor = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], cfg.contrast_lower,
                             cfg.contrast_upper, seed=seed)
  mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
  return (images - mean) * factor + mean


def standardize(images: tf.Tensor, cfg: DataConfig,
                seed: int | None = None) -> tf.Tensor:
  """Per-image standardization: zero mean, unit variance."""
  del cfg, seed
  return tf.image.per_image_standardization(images)


def cutout(images: tf.Tensor, cfg: DataConfig,
           seed: int | None = None) -> tf.Tensor:
  """Zeroes one random `cutout_size` square per image (DeVries & Taylor 2017).

  The square's centre is uniform over the image, so it may hang off the edge,
  as in the paper. Zero is the mean after standardization.
  """
  shape, size = tf.shape(images), cfg.cutout_size
  h, w = shape[1], shape[2]
  centre = tf.random.uniform([2, shape[0], 1, 1], 0, 1, seed=seed)
  top = tf.cast(centre[0] * tf.cast(h, tf.float32), tf.int32) - size // 2
  left = tf.cast(centre[1] * tf.cast(w, tf.float32), tf.int32) - size // 2
  ys, xs = tf.range(h)[None, :, None], tf.range(w)[None, None, :]
  inside = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
  return images * tf.cast(~inside, images.dtype)[..., None]


# Name (as in data.augment) -> op, in the order they are applied.
OPS = {
    "pad_crop": Op(pad_crop, on_uint8=True),
    "random_crop": Op(random_crop, on_uint8=True),
    "flip": Op(flip, on_uint8=True),
    "trivial_augment": Op(trivial),
    "brightness": Op(brightness),
    "contrast": Op(contrast),
    "standardize": Op(standardize, in_eval=True, normalizes=True),
    "cutout": Op(cutout),
}
