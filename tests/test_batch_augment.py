"""batch_augment: the whole-batch distortions match augment.py's, per image."""

import numpy as np
import tensorflow as tf

from estimator_cifar.config import DataConfig
from estimator_cifar.data import augment, batch_augment


def _coordinates(batch: int) -> np.ndarray:
  """uint8 [B, 32, 32, 3]: channel 0 holds row+1, channel 1 column+1, 2 the image."""
  yy, xx = np.meshgrid(np.arange(32) + 1, np.arange(32) + 1, indexing="ij")
  images = np.zeros((batch, 32, 32, 3), np.uint8)
  images[..., 0], images[..., 1] = yy, xx
  images[..., 2] = np.arange(batch)[:, None, None]
  return images


def _find_crop(padded: np.ndarray, out: np.ndarray, size: int):
  """The (row, column, flipped) window of `padded` that `out` is, else None."""
  limit = padded.shape[0] - size
  for oy in range(limit + 1):
    for ox in range(limit + 1):
      window = padded[oy:oy + size, ox:ox + size]
      for flipped in (False, True):
        if np.array_equal(window[:, ::-1] if flipped else window, out):
          return oy, ox, flipped
  return None


def test_pad_crop_and_flip_are_per_image_windows_over_every_offset():
  cfg = DataConfig(augment=["pad_crop", "flip"])
  images = _coordinates(400)
  out = batch_augment.crop_and_flip(tf.constant(images), cfg, seed=1).numpy()
  assert out.shape == (400, 32, 32, 3) and out.dtype == np.uint8
  padded = np.pad(images, [[0, 0], [4, 4], [4, 4], [0, 0]])
  found = [_find_crop(padded[i], out[i], 32) for i in range(len(out))]
  assert all(f is not None for f in found)
  rows, cols, flips = zip(*found)
  # 9 offsets per axis (0..2*pad), each seen; about half the images flipped.
  assert set(rows) == set(cols) == set(range(9))
  assert 140 < sum(flips) < 260
  assert len(set(zip(rows, cols))) > 60  # Offsets drawn per image, not per batch.


def test_random_crop_to_24_without_padding():
  cfg = DataConfig(augment=["random_crop"], image_size=24)
  images = _coordinates(100)
  out = batch_augment.crop_and_flip(tf.constant(images), cfg).numpy()
  assert out.shape == (100, 24, 24, 3)
  found = [_find_crop(images[i], out[i], 24) for i in range(100)]
  assert all(f is not None and not f[2] for f in found)  # No flip asked for.
  assert {f[0] for f in found} == set(range(9))


def test_standardize_only_equals_the_per_image_transform():
  cfg = DataConfig(augment=["standardize"])
  images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), np.uint8)
  images[0] = 7  # A constant image: the stddev floor 1/sqrt(N) applies.
  got = batch_augment.train_transform(tf.constant(images), cfg).numpy()
  want = np.stack([augment.train_transform(tf.constant(im), cfg).numpy()
                   for im in images])
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_eval_transform_on_a_batch_matches_per_image():
  # The eval input_fn applies augment.eval_transform to whole batches.
  for size in (32, 24):
    cfg = DataConfig(augment=["random_crop", "flip", "standardize"],
                     image_size=size)
    images = np.random.default_rng(1).integers(0, 256, (5, 32, 32, 3), np.uint8)
    got = augment.eval_transform(tf.constant(images), cfg).numpy()
    want = np.stack([augment.eval_transform(tf.constant(im), cfg).numpy()
                     for im in images])
    assert got.shape == (5, size, size, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_brightness_shifts_each_image_by_its_own_delta():
  cfg = DataConfig(augment=["brightness"])
  images = np.random.default_rng(2).integers(0, 256, (64, 32, 32, 3), np.uint8)
  out = batch_augment.train_transform(tf.constant(images), cfg).numpy()
  shift = out * 255.0 - images
  per_image = shift.reshape(64, -1)
  np.testing.assert_allclose(per_image, per_image[:, :1].repeat(3072, 1), atol=1e-3)
  deltas = per_image[:, 0]
  assert np.all(np.abs(deltas) <= cfg.brightness_delta * 255 + 1e-3)
  assert len(np.unique(np.round(deltas, 3))) > 50


def test_contrast_scales_each_channel_about_its_mean():
  cfg = DataConfig(augment=["contrast"])
  images = np.random.default_rng(3).integers(0, 256, (32, 32, 32, 3), np.uint8)
  out = batch_augment.train_transform(tf.constant(images), cfg).numpy() * 255.0
  x = images.astype(np.float64)
  mean = x.mean(axis=(1, 2), keepdims=True)
  centred = x - mean
  factor = ((out - mean) * centred).sum(axis=(1, 2, 3)) / (centred ** 2).sum(
      axis=(1, 2, 3))  # Least squares, per image.
  np.testing.assert_allclose(out, (x - mean) * factor[:, None, None, None] + mean,
                             atol=0.05)
  assert np.all((factor >= cfg.contrast_lower - 1e-3) &
                (factor <= cfg.contrast_upper + 1e-3))


def test_cutout_zeroes_one_clipped_square_per_image():
  cfg = DataConfig(augment=["cutout"], cutout_size=16)
  images = np.full((50, 32, 32, 3), 200, np.uint8)
  out = batch_augment.train_transform(tf.constant(images), cfg).numpy()
  for image in out:
    zero = (image == 0).all(-1)
    assert np.array_equal(zero, (image == 0).any(-1))  # All channels alike.
    rows, cols = np.flatnonzero(zero.any(1)), np.flatnonzero(zero.any(0))
    # One rectangle: 8..16 rows and columns (the centre is inside the image).
    assert 8 <= len(rows) <= 16 and 8 <= len(cols) <= 16
    assert zero.sum() == len(rows) * len(cols)
    assert rows[-1] - rows[0] + 1 == len(rows)
