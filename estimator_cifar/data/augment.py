"""The named distortions: one function per op, one registry that orders them.

`OPS` maps each name `data.augment` may list to its function, and its order is
the order of application, whatever the list's order. Every op works on a
whole batch [B, H, W, C] with its own draws per image: one set of ops per
batch instead of a per-image map, which cost tf.data a function call and some
twenty small ops per image (docs/performance.md).

The geometric ops (crop, flip) only say where each output pixel comes from
(a Window of row and column indices); all of them together are then one pad
and one gather per axis of the uint8 batch, a quarter of float's memory
traffic. The other ops see float pixels in 0..255. The result is
standardized per image if `standardize` is listed, else x / 255. Eval has no
randomness: a central crop to `image_size`, then the ops flagged `in_eval`.
The eval transform is also what the exported SavedModel runs on raw uint8
images.

A new op is one function and one `OPS` entry (plus its name in
config.AUGMENTATIONS, which validates without TensorFlow): `op(images, cfg,
seed) -> images`, or for a geometric one `op(window, cfg, seed) -> Window`.

Random brightness and contrast are mostly undone by per-image standardization
(tensorflow#1458), so only the tutorial recipe keeps them.
"""

import dataclasses
from typing import Any, Callable

import tensorflow as tf

from estimator_cifar.config import DataConfig
from estimator_cifar.data import trivial_augment

# op(images or window, cfg, seed) -> the same kind, distorted.
OpFn = Callable[[Any, DataConfig, "int | None"], Any]


@dataclasses.dataclass(frozen=True)
class Op:
  """One named distortion and where it runs."""
  fn: OpFn
  geometric: bool = False   # Moves pixels: fn maps a Window to a Window.
  in_eval: bool = False     # Deterministic: eval and serving run it too.
  normalizes: bool = False  # Its output replaces the x / 255 scaling.


@dataclasses.dataclass(frozen=True)
class Window:
  """Where each output pixel comes from: pixel (y, x) of output image i is
  pixel (rows[i, y], cols[i, x]) of source image i. Indices up to `reach`
  pixels off the image read zero."""
  rows: tf.Tensor  # int32 [B, H'].
  cols: tf.Tensor  # int32 [B, W'].
  reach: int = 0

  @classmethod
  def whole(cls, images: tf.Tensor) -> "Window":
    """Every pixel where it is."""
    batch = tf.shape(images)[0]
    return cls(*(tf.tile(tf.range(images.shape[axis])[None], [batch, 1])
                 for axis in (1, 2)))

  def gather(self, images: tf.Tensor) -> tf.Tensor:
    """The output images: one pad, then one gather per axis."""
    reach = self.reach
    if reach:
      images = tf.pad(images, [[0, 0], [reach, reach], [reach, reach], [0, 0]])
    images = tf.gather(images, self.rows + reach, axis=1, batch_dims=1)
    return tf.gather(images, self.cols + reach, axis=2, batch_dims=1)


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
  window = None  # The geometric ops' so far, not yet gathered.
  for k, (name, op) in enumerate(OPS.items(), start=1):
    if name not in chosen:
      continue
    op_seed = None if seed is None else seed * 10 + k
    if op.geometric:
      window = op.fn(window or Window.whole(images), cfg, op_seed)
      continue
    if window is not None:
      images, window = window.gather(images), None
    images = op.fn(tf.cast(images, tf.float32), cfg, op_seed)
  if window is not None:
    images = window.gather(images)
  return _finish(images, chosen)


def eval_transform(images: tf.Tensor, cfg: DataConfig) -> tf.Tensor:
  """Deterministic: central crop to `image_size`, then the `in_eval` ops."""
  size = cfg.image_size
  if size < images.shape[-2]:
    images = tf.image.resize_with_crop_or_pad(images, size, size)
  chosen = set(cfg.augment)
  for name, op in OPS.items():
    if name in chosen and op.in_eval and not op.geometric:
      images = op.fn(tf.cast(images, tf.float32), cfg, None)
  return _finish(images, chosen)


def _finish(images: tf.Tensor, chosen: set[str]) -> tf.Tensor:
  """float32 output: x / 255 unless a chosen op normalized the pixels."""
  images = tf.cast(images, tf.float32)
  if any(OPS[name].normalizes for name in chosen):
    return images
  return images / 255.0


def random_crop(window: Window, cfg: DataConfig,
                seed: int | None = None) -> Window:
  """A random `image_size` window of each image, offsets uniform."""
  size, length = cfg.image_size, window.rows.shape[1]
  # One draw for both axes: two ops with the same seed would give row ==
  # column offsets, windows always on the diagonal.
  offsets = tf.random.uniform([2, tf.shape(window.rows)[0], 1], 0,
                              length - size + 1, tf.int32, seed=seed)
  steps = offsets + tf.range(size)[None, None, :]
  return Window(tf.gather(window.rows, steps[0], batch_dims=1),
                tf.gather(window.cols, steps[1], batch_dims=1), window.reach)


def pad_crop(window: Window, cfg: DataConfig, seed: int | None = None) -> Window:
  """Zero-pads each side by `data.pad`, then crops at random (random_crop)."""
  pad = cfg.pad

  def grow(index):  # `pad` more indices past each end, off the image.
    return tf.concat([index[:, :1] - tf.range(pad, 0, -1), index,
                      index[:, -1:] + tf.range(1, pad + 1)], axis=1)

  padded = Window(grow(window.rows), grow(window.cols), window.reach + pad)
  return random_crop(padded, cfg, seed)


def flip(window: Window, cfg: DataConfig, seed: int | None = None) -> Window:
  """Mirrors each image left-right with probability 1/2."""
  del cfg
  flipped = tf.random.uniform([tf.shape(window.cols)[0], 1], seed=seed) < 0.5
  return dataclasses.replace(
      window, cols=tf.where(flipped, tf.reverse(window.cols, axis=[1]), window.cols))


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
    "pad_crop": Op(pad_crop, geometric=True),
    "random_crop": Op(random_crop, geometric=True),
    "flip": Op(flip, geometric=True),
    "trivial_augment": Op(trivial),
    "brightness": Op(brightness),
    "contrast": Op(contrast),
    "standardize": Op(standardize, in_eval=True, normalizes=True),
    "cutout": Op(cutout),
}
