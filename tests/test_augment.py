"""The named augmentations: shapes, what each one really does, eval determinism."""

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import config as config_lib
from estimator_cifar.data import augment

v1 = tf.compat.v1


def _image(seed=0) -> np.ndarray:
  """A uint8 image with no symmetry: every pixel distinct in some channel."""
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def _data(*augment_names, **fields) -> config_lib.DataConfig:
  cfg = config_lib.DataConfig(augment=list(augment_names))
  for key, value in fields.items():
    setattr(cfg, key, value)
  return cfg


def _same(a: np.ndarray, b: np.ndarray) -> bool:
  return a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-6)


def _run(fn, image: np.ndarray, times: int = 1, seed: int = 1):
  """Evaluates `fn(image_tensor)` `times` times in one graph: fresh randomness
  on each run, the same sequence on every test run (a graph-level seed), so
  the statistical checks below cannot flake."""
  with tf.Graph().as_default():
    v1.set_random_seed(seed)
    out = fn(tf.constant(image))
    with v1.Session() as sess:
      return [sess.run(out) for _ in range(times)]


def test_every_augmentation_is_implemented():
  cfg = _data(*config_lib.AUGMENTATIONS)
  (out,) = _run(lambda x: augment.train_transform(x, cfg), _image())
  assert out.shape == (32, 32, 3) and out.dtype == np.float32


def test_pad_crop_is_a_shifted_window_of_the_zero_padded_image():
  image = _image()
  padded = np.pad(image, ((4, 4), (4, 4), (0, 0))).astype(np.float32) / 255.0
  outs = _run(lambda x: augment.train_transform(x, _data("pad_crop")), image, 12)
  offsets = set()
  for out in outs:
    assert out.shape == (32, 32, 3)
    found = [(dy, dx) for dy in range(9) for dx in range(9)
             if _same(out, padded[dy:dy + 32, dx:dx + 32])]
    assert len(found) == 1
    offsets.add(found[0])
  assert len(offsets) > 3  # Really random.


def test_random_crop_to_24_pixels():
  image = _image()
  cfg = _data("random_crop", image_size=24)
  for out in _run(lambda x: augment.train_transform(x, cfg), image, 5):
    assert out.shape == (24, 24, 3)
    hits = [(dy, dx) for dy in range(9) for dx in range(9) if _same(
        out, image[dy:dy + 24, dx:dx + 24].astype(np.float32) / 255.0)]
    assert len(hits) == 1


def test_flip_really_flips_left_right():
  image = _image()
  outs = _run(lambda x: augment.train_transform(x, _data("flip")), image, 16)
  original = image.astype(np.float32) / 255.0
  flipped = original[:, ::-1, :]
  kinds = []
  for out in outs:
    assert _same(out, original) or _same(out, flipped)
    kinds.append(_same(out, flipped))
  assert any(kinds) and not all(kinds)


def test_standardize_gives_zero_mean_unit_std():
  (out,) = _run(lambda x: augment.train_transform(x, _data("standardize")),
                _image())
  assert abs(out.mean()) < 1e-5
  assert out.std() == pytest.approx(1.0, rel=1e-3)


def test_brightness_and_contrast_change_the_pixels():
  image = _image()
  base = image.astype(np.float32)
  for name in ("brightness", "contrast"):
    outs = _run(lambda x, n=name: augment.train_transform(x, _data(n)), image, 3)
    for out in outs:
      assert not np.allclose(out * 255.0, base, atol=0.5)
  # Brightness adds one offset to every pixel, within +-63.
  (out,) = _run(lambda x: augment.train_transform(x, _data("brightness")), image)
  delta = out * 255.0 - base
  assert np.allclose(delta, delta.flat[0], atol=1e-3) and abs(delta.flat[0]) <= 63.001


def test_cutout_zeroes_one_square():
  image = np.full((32, 32, 3), 200, np.uint8)
  cfg = _data("cutout", cutout_size=8)
  centres = set()
  for out in _run(lambda x: augment.train_transform(x, cfg), image, 10):
    zero = np.all(out == 0, axis=-1)
    ys, xs = np.nonzero(zero)
    assert len(ys) > 0
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert zero.sum() == h * w  # One axis-aligned rectangle ...
    assert h <= 8 and w <= 8  # ... a square of side 8, clipped at the edges.
    if 4 <= ys.min() and ys.max() <= 27 and 4 <= xs.min() and xs.max() <= 27:
      assert h == w == 8
    assert np.all(out[~zero] == pytest.approx(200 / 255.0))
    centres.add((ys.min(), xs.min()))
  assert len(centres) > 3
  # Off the diagonal too: the two coordinates are drawn independently.
  assert any(y != x for y, x in centres)


def test_seeded_ops_get_distinct_seeds():
  """Ops sharing one op seed draw the same numbers: flip would follow crop."""
  cfg = _data(*config_lib.AUGMENTATIONS)
  with tf.Graph().as_default():
    v1.set_random_seed(3)
    augment.train_transform(tf.constant(_image()), cfg, seed=3)
    seeds = [op.get_attr("seed2") for op in v1.get_default_graph().get_operations()
             if op.type.startswith("Random")]
  assert len(seeds) >= 5 and len(set(seeds)) == len(seeds)
  # And the same seed repeats the same images.
  image = _image()
  outs = [_run(lambda x: augment.train_transform(x, cfg, seed=3), image, 4,
               seed=3) for _ in range(2)]
  assert all(np.array_equal(a, b) for a, b in zip(*outs))
  assert not np.array_equal(outs[0][0], outs[0][1])


def test_eval_transform_is_deterministic_central_crop():
  image = _image()
  cfg = _data("pad_crop", "flip", "brightness", "contrast", "standardize",
              "cutout", image_size=24)
  outs = _run(lambda x: augment.eval_transform(x, cfg), image, 3)
  crop = image[4:28, 4:28].astype(np.float32)
  want = (crop - crop.mean()) / max(crop.std(), 1 / np.sqrt(crop.size))
  for out in outs:
    assert out.shape == (24, 24, 3)
    np.testing.assert_allclose(out, want, atol=1e-4)
