"""The named augmentations: the registry, what each op really does per image, eval."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import config as config_lib
from estimator_cifar.config import DataConfig
from estimator_cifar.data import augment

v1 = tf.compat.v1


def _images(batch: int, seed: int = 0) -> np.ndarray:
  """uint8 [B, 32, 32, 3] with no symmetry: every pixel distinct in some channel."""
  return np.random.default_rng(seed).integers(0, 256, (batch, 32, 32, 3), np.uint8)


def _coordinates(batch: int) -> np.ndarray:
  """uint8 [B, 32, 32, 3]: channel 0 holds row+1, channel 1 column+1, 2 the image."""
  yy, xx = np.meshgrid(np.arange(32) + 1, np.arange(32) + 1, indexing="ij")
  images = np.zeros((batch, 32, 32, 3), np.uint8)
  images[..., 0], images[..., 1] = yy, xx
  images[..., 2] = np.arange(batch)[:, None, None]
  return images


def _train(images: np.ndarray, *names: str, seed=None, **fields) -> np.ndarray:
  cfg = DataConfig(augment=list(names), **fields)
  return augment.train_transform(tf.constant(images), cfg, seed).numpy()


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


def test_every_config_name_has_one_op_and_every_op_runs():
  assert tuple(augment.OPS) == config_lib.AUGMENTATIONS
  out = _train(_images(4), *config_lib.AUGMENTATIONS, trivial_augment_ranges="wide")
  assert out.shape == (4, 32, 32, 3) and out.dtype == np.float32


def test_ops_run_in_registry_order_whatever_the_list_order(monkeypatch):
  called = []
  for name, op in augment.OPS.items():
    monkeypatch.setitem(augment.OPS, name, dataclasses.replace(
        op, fn=lambda x, cfg, seed, name=name, fn=op.fn: called.append(name) or
        fn(x, cfg, seed)))
  _train(_images(2), *reversed(config_lib.AUGMENTATIONS))
  assert called == list(config_lib.AUGMENTATIONS)


def test_pad_crop_and_flip_are_per_image_windows_over_every_offset():
  images = _coordinates(400)
  out = (_train(images, "pad_crop", "flip", seed=1) * 255).round().astype(np.uint8)
  assert out.shape == (400, 32, 32, 3)
  padded = np.pad(images, [[0, 0], [4, 4], [4, 4], [0, 0]])
  found = [_find_crop(padded[i], out[i], 32) for i in range(len(out))]
  assert all(f is not None for f in found)
  rows, cols, flips = zip(*found)
  # 9 offsets per axis (0..2*pad), each seen; about half the images flipped.
  assert set(rows) == set(cols) == set(range(9))
  assert 140 < sum(flips) < 260
  assert len(set(zip(rows, cols))) > 60  # Offsets drawn per image, not per batch.
  assert any(r != c for r, c in zip(rows, cols))  # Not tied to the diagonal.


def test_random_crop_to_24_without_padding_or_flip():
  images = _coordinates(100)
  out = (_train(images, "random_crop", image_size=24) * 255).round().astype(np.uint8)
  assert out.shape == (100, 24, 24, 3)
  found = [_find_crop(images[i], out[i], 24) for i in range(100)]
  assert all(f is not None and not f[2] for f in found)
  assert {f[0] for f in found} == set(range(9))


def test_a_smaller_image_size_crops_even_without_a_crop_op():
  assert _train(_images(3), "standardize", image_size=24).shape == (3, 24, 24, 3)


def test_standardize_gives_zero_mean_unit_std_with_the_stddev_floor():
  images = _images(8)
  images[0] = 7  # A constant image: the stddev floor 1/sqrt(N) keeps it finite.
  out = _train(images, "standardize")
  np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-5)
  np.testing.assert_allclose(out[1:].std(axis=(1, 2, 3)), 1, rtol=1e-3)
  assert np.all(out[0] == 0)


def test_without_standardize_pixels_are_scaled_to_0_1():
  images = _images(2)
  np.testing.assert_allclose(_train(images), images / 255.0, atol=1e-6)


def test_brightness_shifts_each_image_by_its_own_delta():
  cfg = DataConfig(augment=["brightness"])
  images = _images(64, seed=2)
  shift = (_train(images, "brightness") * 255.0 - images).reshape(64, -1)
  np.testing.assert_allclose(shift, shift[:, :1].repeat(3072, 1), atol=1e-3)
  deltas = shift[:, 0]
  assert np.all(np.abs(deltas) <= cfg.brightness_delta * 255 + 1e-3)
  assert len(np.unique(np.round(deltas, 3))) > 50


def test_contrast_scales_each_channel_about_its_mean():
  cfg = DataConfig(augment=["contrast"])
  images = _images(32, seed=3)
  out = _train(images, "contrast") * 255.0
  x = images.astype(np.float64)
  mean = x.mean(axis=(1, 2), keepdims=True)
  centred = x - mean
  factor = ((out - mean) * centred).sum(axis=(1, 2, 3)) / (centred ** 2).sum(
      axis=(1, 2, 3))  # Least squares, per image.
  np.testing.assert_allclose(out, (x - mean) * factor[:, None, None, None] + mean,
                             atol=0.05)
  assert np.all((factor >= cfg.contrast_lower - 1e-3) &
                (factor <= cfg.contrast_upper + 1e-3))
  assert len(np.unique(np.round(factor, 3))) > 20


def test_cutout_zeroes_one_clipped_square_per_image():
  out = _train(np.full((50, 32, 32, 3), 200, np.uint8), "cutout", cutout_size=16)
  corners = set()
  for image in out:
    zero = (image == 0).all(-1)
    assert np.array_equal(zero, (image == 0).any(-1))  # All channels alike.
    rows, cols = np.flatnonzero(zero.any(1)), np.flatnonzero(zero.any(0))
    # One rectangle: 8..16 rows and columns (the centre is inside the image).
    assert 8 <= len(rows) <= 16 and 8 <= len(cols) <= 16
    assert zero.sum() == len(rows) * len(cols)
    assert rows[-1] - rows[0] + 1 == len(rows)
    assert np.allclose(image[~zero], 200 / 255.0)
    corners.add((rows[0], cols[0]))
  assert len(corners) > 10
  assert any(y != x for y, x in corners)  # Coordinates drawn independently.


def test_seeded_ops_get_distinct_seeds_and_repeat():
  """Ops sharing one op seed draw the same numbers: flip would follow crop."""
  cfg = DataConfig(augment=list(config_lib.AUGMENTATIONS))
  with tf.Graph().as_default():
    v1.set_random_seed(3)
    augment.train_transform(tf.constant(_images(2)), cfg, seed=3)
    seeds = [op.get_attr("seed2") for op in v1.get_default_graph().get_operations()
             if op.type.startswith("Random")]
  assert len(seeds) >= 5 and len(set(seeds)) == len(seeds)

  def draws():
    with tf.Graph().as_default():
      v1.set_random_seed(3)
      out = augment.train_transform(tf.constant(_images(2)), cfg, seed=3)
      with v1.Session() as sess:
        return [sess.run(out) for _ in range(3)]

  first, second = draws(), draws()
  assert all(np.array_equal(a, b) for a, b in zip(first, second))
  assert not np.array_equal(first[0], first[1])


@pytest.mark.parametrize("size", [32, 24])
def test_eval_transform_is_a_deterministic_central_crop(size):
  images = _images(5, seed=1)
  cfg = DataConfig(augment=list(config_lib.AUGMENTATIONS), image_size=size)
  outs = [augment.eval_transform(tf.constant(images), cfg).numpy() for _ in range(2)]
  start = (32 - size) // 2
  crop = images[:, start:start + size, start:start + size].astype(np.float32)
  mean = crop.mean(axis=(1, 2, 3), keepdims=True)
  std = np.maximum(crop.std(axis=(1, 2, 3), keepdims=True), 1 / np.sqrt(crop[0].size))
  for out in outs:
    assert out.shape == (5, size, size, 3)
    np.testing.assert_allclose(out, (crop - mean) / std, atol=1e-4)
