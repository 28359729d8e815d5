"""TrivialAugment (Müller & Hutter 2021): one random op at a random strength.

Each image gets one of 14 ops, drawn uniformly, at a strength drawn uniformly
from 31 levels. RANGES holds the two op ranges of the paper: "wide", which it
uses for CIFAR (torchvision's TrivialAugmentWide), and "standard", RandAugment's
milder ones. The ops act on float [B, H, W, 3] images with values in 0..255, a
whole batch at once: each op runs on the images that drew it.

Geometric ops are one projective transform per image, about the centre
(nearest neighbour; uncovered pixels are gray, 128). The colour ops follow PIL's
ImageEnhance and ImageOps, which the paper's ranges assume.
"""

import dataclasses
import math

import tensorflow as tf

LEVELS = 31  # Strengths 0..30, as in the paper.
OPS = ("identity", "shear_x", "shear_y", "translate_x", "translate_y",
       "rotate", "brightness", "color", "contrast", "sharpness", "posterize",
       "solarize", "autocontrast", "equalize")
FILL = 128.0


@dataclasses.dataclass(frozen=True)
class Ranges:
  """Each op's strength at the top level (level 1)."""
  shear: float
  translate: float  # Fraction of the image's side (the paper's 32 px: 1.0).
  rotate: float  # Degrees.
  enhance: float  # Enhance factors 1 +- this.
  posterize: int  # Bits dropped: 8 - this are kept.


# The paper's two augmentation spaces; config.TRIVIAL_AUGMENT_RANGES names them.
# The paper gives translations in pixels of CIFAR's 32: 32 (wide) and 10.
RANGES = {"wide": Ranges(shear=0.99, translate=1.0, rotate=135.0, enhance=0.99,
                         posterize=6),
          "standard": Ranges(shear=0.3, translate=10 / 32, rotate=30.0,
                             enhance=0.9, posterize=4)}

_GRAY = (0.299, 0.587, 0.114)  # PIL's "L" conversion.


def apply(images: tf.Tensor, seed: int | None, ranges: str) -> tf.Tensor:
  """Augments float [B, H, W, 3] images in 0..255 with RANGES[ranges] (the
  config's data.trivial_augment_ranges); returns the same shape."""
  return transform(images, *draw(tf.shape(images)[0], seed), RANGES[ranges])


def draw(batch: tf.Tensor, seed: int | None = None):
  """Each image's op index, level in [0, 1] and sign (+-1): uniform draws."""
  def op_seed(k):  # Ops sharing one seed would draw the same numbers.
    return None if seed is None else seed * 3 + k + 1
  op = tf.random.uniform([batch], 0, len(OPS), tf.int32, seed=op_seed(0))
  level = tf.random.uniform([batch], 0, LEVELS, tf.int32, seed=op_seed(1))
  flip = tf.random.uniform([batch], seed=op_seed(2)) < 0.5
  return (op, tf.cast(level, tf.float32) / (LEVELS - 1),
          tf.where(flip, -1.0, 1.0))


def transform(images: tf.Tensor, op: tf.Tensor, level: tf.Tensor,
              sign: tf.Tensor, ranges: Ranges) -> tf.Tensor:
  """Applies OPS[op[i]] at `level[i]` in [0, 1] (signed ops: times sign[i]).

  Each op runs on its own images only (partition, then stitch back in
  order): a fourteenth of the work of running every op on the whole batch.
  """
  which = tf.dynamic_partition(tf.range(tf.shape(images)[0]), op, len(OPS))
  outs = [_OP_FNS[name](tf.gather(images, i), tf.gather(level, i),
                        tf.gather(sign, i), ranges)
          for name, i in zip(OPS, which)]
  return tf.ensure_shape(tf.dynamic_stitch(which, outs), images.shape)


def _column(values):
  return values[:, None, None, None]


def _geometric(matrix):
  """An op from its 2 x 3 matrix, a function of the signed level and centre.

  matrix(v, cy, cx, r) gives (a0, a1, a2, b0, b1, b2), with r the Ranges:
  output pixel (x, y) reads input pixel (a0 x + a1 y + a2, b0 x + b1 y + b2).
  """
  def op(images, level, sign, ranges):
    value = level * sign
    shape = tf.cast(tf.shape(images), tf.float32)
    coefficients = matrix(value, (shape[1] - 1) / 2, (shape[2] - 1) / 2, ranges)
    zero = tf.zeros_like(value)
    rows = tf.stack([c + zero for c in coefficients] + [zero, zero], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=rows, output_shape=tf.shape(images)[1:3],
        fill_value=FILL, interpolation="NEAREST", fill_mode="CONSTANT")
  return op


def _rotation(value, cy, cx, ranges):
  """About the centre, counter-clockwise for a positive angle."""
  angle = value * ranges.rotate * math.pi / 180.0
  cos, sin = tf.cos(angle), tf.sin(angle)
  return (cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy)


def _blend(degenerate):
  """PIL's ImageEnhance: degenerate + factor * (image - degenerate), clipped."""
  def enhance(images, level, sign, ranges):
    factor = _column(1.0 + level * sign * ranges.enhance)
    base = degenerate(images)
    return tf.clip_by_value(base + factor * (images - base), 0.0, 255.0)
  return enhance


def _gray(images):
  return tf.reduce_sum(images * tf.constant(_GRAY), axis=-1, keepdims=True)


def _posterize(images, level, sign, ranges):
  """Keeps the top 8 - round(ranges.posterize * level) bits."""
  del sign
  step = _column(tf.pow(2.0, tf.round(ranges.posterize * level)))
  return tf.floor(images / step) * step


def _solarize(images, level, sign, ranges):
  """Inverts the pixels at or above 256 * (1 - level)."""
  del sign, ranges
  return tf.where(images >= _column(256.0 * (1.0 - level)), 255.0 - images, images)


def _smoothed(images):
  """PIL's SMOOTH filter (3 x 3, centre weight 5) inside; the border stays."""
  h, w = images.shape[1], images.shape[2]
  window = tf.add_n([images[:, dy:dy + h - 2, dx:dx + w - 2]
                     for dy in range(3) for dx in range(3)])
  centre = images[:, 1:-1, 1:-1]
  change = (window + 4.0 * centre) / 13.0 - centre
  return images + tf.pad(change, [[0, 0], [1, 1], [1, 1], [0, 0]])


def _autocontrast(images, *_):
  """Stretches each channel to 0..255 (channels of one value stay as they are)."""
  low = tf.reduce_min(images, axis=[1, 2], keepdims=True)
  high = tf.reduce_max(images, axis=[1, 2], keepdims=True)
  scale = tf.math.divide_no_nan(255.0, high - low)
  return tf.where(high > low, (images - low) * scale, images)


def _equalize(images, *_):
  """PIL's ImageOps.equalize per channel, on the integer values."""
  shape = tf.shape(images)
  pixels = tf.transpose(tf.cast(images, tf.int32), [0, 3, 1, 2])
  pixels = tf.reshape(pixels, [shape[0] * 3, shape[1] * shape[2]])
  hist = tf.math.bincount(pixels, minlength=256, maxlength=256, axis=-1)
  # PIL: step = (pixels - count of the last used value) // 255, and value v
  # maps to (step // 2 + pixels below v) // step; a step of 0 changes nothing.
  last = tf.reduce_max(tf.where(hist > 0, tf.range(256)[None, :], 0), axis=1)
  last_count = tf.gather(hist, last, batch_dims=1)
  step = (tf.reduce_sum(hist, axis=1) - last_count) // 255
  below = tf.cumsum(hist, axis=1, exclusive=True)
  safe_step = tf.maximum(step, 1)[:, None]
  lut = tf.minimum((safe_step // 2 + below) // safe_step, 255)
  mapped = tf.gather(lut, pixels, batch_dims=1)
  mapped = tf.where(step[:, None] > 0, mapped, pixels)
  mapped = tf.reshape(mapped, [shape[0], 3, shape[1], shape[2]])
  return tf.cast(tf.transpose(mapped, [0, 2, 3, 1]), images.dtype)


_OP_FNS = {
    "identity": lambda images, *_: images,
    "shear_x": _geometric(lambda v, cy, cx, r: (1.0, v * r.shear, -v * r.shear * cy,
                                                0.0, 1.0, 0.0)),
    "shear_y": _geometric(lambda v, cy, cx, r: (1.0, 0.0, 0.0,
                                                v * r.shear, 1.0, -v * r.shear * cx)),
    # The side is 2 * centre + 1.
    "translate_x": _geometric(lambda v, cy, cx, r: (
        1.0, 0.0, -v * r.translate * (2 * cx + 1), 0.0, 1.0, 0.0)),
    "translate_y": _geometric(lambda v, cy, cx, r: (
        1.0, 0.0, 0.0, 0.0, 1.0, -v * r.translate * (2 * cy + 1))),
    "rotate": _geometric(_rotation),
    "brightness": _blend(tf.zeros_like),
    "color": _blend(_gray),
    "contrast": _blend(lambda x: tf.reduce_mean(_gray(x), axis=[1, 2, 3], keepdims=True)),
    "sharpness": _blend(_smoothed),
    "posterize": _posterize,
    "solarize": _solarize,
    "autocontrast": _autocontrast,
    "equalize": _equalize,
}
