"""trivial_augment: PIL's colour ops, exact geometry, uniform draws, both pipelines."""

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import config
from estimator_cifar.config import DataConfig
from estimator_cifar.data import augment, batch_augment
from estimator_cifar.data import trivial_augment as ta

_IMAGES = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), np.uint8)
# Smooth images too: on noise, equalize and autocontrast barely act.
_IMAGES[3:] = (np.arange(32)[None, :, None, None] * 3 + np.arange(6)[3:, None, None, None] * 20
               + np.arange(3)[None, None, None, :] * 10).astype(np.uint8)
_WIDE = ta.RANGES["wide"]


def _transform(name: str, level: float, sign: float = 1.0,
               ranges: ta.Ranges = _WIDE) -> np.ndarray:
  n = len(_IMAGES)
  return ta.transform(tf.constant(_IMAGES, tf.float32),
                      tf.fill([n], ta.OPS.index(name)), tf.fill([n], level),
                      tf.fill([n], sign), ranges).numpy()


def _pil_reference(name, image, factor, bits, level):
  """PIL's own op (the one the paper's ranges are given for) on a uint8 image."""
  enhance = pytest.importorskip("PIL.ImageEnhance")
  image_ops = pytest.importorskip("PIL.ImageOps")
  if name in ("brightness", "color", "contrast", "sharpness"):
    return getattr(enhance, name.capitalize())(image).enhance(factor)
  if name == "posterize":
    return image_ops.posterize(image, bits)
  if name == "solarize":
    return image_ops.solarize(image, 256 * (1 - level))
  return getattr(image_ops, name)(image)


@pytest.mark.parametrize("name", ["brightness", "color", "contrast", "sharpness",
                                  "posterize", "solarize", "autocontrast",
                                  "equalize"])
@pytest.mark.parametrize("level,sign,ranges", [(0.5, 1.0, "wide"), (0.9, -1.0, "wide"),
                                               (0.9, -1.0, "standard")])
def test_colour_ops_match_pil(name, level, sign, ranges):
  pil_image = pytest.importorskip("PIL.Image")
  # The ranges' top strengths, as the paper's tables give them.
  top_factor, top_bits = {"wide": (0.99, 6), "standard": (0.9, 4)}[ranges]
  factor = 1.0 + level * top_factor * sign
  bits = 8 - round(top_bits * level)
  want = np.stack([np.asarray(_pil_reference(name, pil_image.fromarray(x), factor, bits, level))
                   for x in _IMAGES]).astype(np.float32)
  got = _transform(name, level, sign, ta.RANGES[ranges])
  # PIL rounds to uint8 at each step where these stay float: within one level.
  assert np.abs(np.round(got) - want).max() <= 1.0
  assert not np.array_equal(want, _IMAGES)  # The op did something.


def test_identity_and_strength_zero_leave_images_unchanged():
  for name in ta.OPS:
    got = _transform(name, 1.0 if name == "identity" else 0.0)
    if name not in ("autocontrast", "equalize"):  # These have no strength.
      np.testing.assert_array_equal(got, _IMAGES)


def test_geometry_is_exact():
  right = _transform("translate_x", 8 / 32)  # 8 of the wide 32 pixels.
  np.testing.assert_array_equal(right[:, :, 8:], _IMAGES[:, :, :-8])
  assert (right[:, :, :8] == ta.FILL).all()
  up = _transform("translate_y", 8 / 32, sign=-1.0)
  np.testing.assert_array_equal(up[:, :-8], _IMAGES[:, 8:])
  quarter = _transform("rotate", 90 / 135)
  np.testing.assert_array_equal(quarter, np.rot90(_IMAGES, k=1, axes=(1, 2)))
  # Shear 0.5 about the centre row 15.5: row y reads pixels (y - 15.5) / 2
  # columns away, rounded: the last row 8 to the right, the middle rows none.
  sheared = _transform("shear_x", 0.5 / 0.99)
  np.testing.assert_array_equal(sheared[:, 31, :-8], _IMAGES[:, 31, 8:])
  np.testing.assert_array_equal(sheared[:, 0, 8:], _IMAGES[:, 0, :-8])
  np.testing.assert_array_equal(sheared[:, 15:17], _IMAGES[:, 15:17])


def test_standard_ranges_are_milder_at_the_top_level():
  standard = ta.RANGES["standard"]
  # Translation tops out at 10 pixels, rotation at 30 degrees, shear at 0.3.
  right = _transform("translate_x", 1.0, ranges=standard)
  np.testing.assert_array_equal(right[:, :, 10:], _IMAGES[:, :, :-10])
  assert (right[:, :, :10] == ta.FILL).all()
  turned = _transform("rotate", 1.0, ranges=standard)
  np.testing.assert_array_equal(turned, _transform("rotate", 30 / 135))
  sheared = _transform("shear_x", 1.0, ranges=standard)
  np.testing.assert_array_equal(sheared, _transform("shear_x", 0.3 / 0.99))
  assert set(ta.RANGES) == set(config.TRIVIAL_AUGMENT_RANGES)


def test_draws_are_uniform_over_ops_levels_and_signs():
  op, level, sign = (t.numpy() for t in ta.draw(14000, seed=4))
  counts = np.bincount(op, minlength=len(ta.OPS))
  assert len(counts) == 14 and counts.min() > 850 and counts.max() < 1150
  levels = np.round(level * (ta.LEVELS - 1))
  assert set(levels) == set(range(ta.LEVELS)) and np.allclose(levels, level * 30)
  assert set(sign) == {-1.0, 1.0} and abs(sign.mean()) < 0.05
  # Independent draws: the op says nothing about the sign.
  assert abs(sign[op == 0].mean() - sign[op == 13].mean()) < 0.15


@pytest.mark.parametrize("pipeline", ["batch", "per_image"])
def test_both_pipelines_apply_it_and_change_most_images(pipeline):
  cfg = DataConfig(augment=["trivial_augment"])
  images = tf.constant(_IMAGES[:3])
  _assert_pipeline_augments(pipeline, cfg, images)


def test_both_pipelines_take_the_configured_ranges(monkeypatch):
  seen = []
  real_apply = ta.apply
  monkeypatch.setattr(ta, "apply", lambda images, seed, ranges:
                      seen.append(ranges) or real_apply(images, seed, ranges))
  cfg = DataConfig(augment=["trivial_augment"], trivial_augment_ranges="standard")
  for pipeline in ("batch", "per_image"):
    _assert_pipeline_augments(pipeline, cfg, tf.constant(_IMAGES[:3]))
  assert set(seen) == {"standard"}


DRAWS = 16  # Of each of 3 images.


def _assert_pipeline_augments(pipeline, cfg, images):
  if pipeline == "batch":
    outs = [batch_augment.train_transform(images, cfg).numpy()
            for _ in range(DRAWS)]
  else:
    outs = [np.stack([augment.train_transform(images[i], cfg).numpy()
                      for i in range(3)]) for _ in range(DRAWS)]
  outs = np.stack(outs) * 255.0  # No standardize: x / 255.
  assert outs.shape == (DRAWS, 3, 32, 32, 3)
  assert outs.min() >= 0.0 and outs.max() <= 255.0 + 1e-3
  changed = ~np.isclose(outs, _IMAGES[:3].astype(np.float32), atol=1e-3).all(axis=(2, 3, 4))
  # Most draws change the image: about 80% with either ranges (identity is 1
  # op in 14, and the weakest levels of some ops change nothing); different
  # draws give different images. Over 48 draws both bounds are 5 standard
  # deviations away, so the test does not flake.
  assert changed.mean() > 0.5
  assert len({o.tobytes() for o in outs.reshape(-1, 32 * 32 * 3)}) > 24
