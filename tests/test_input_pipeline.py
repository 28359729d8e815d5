"""input_fn: batch shapes and dtypes, eval covers every record exactly once,
workers read disjoint shards."""

import json

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.data import sources
from estimator_cifar.engine import distribute
from estimator_cifar.errors import ConfigError
from estimator_cifar.data.input_pipeline import IMAGES_KEY, make_input_fn
from tests.testutil import tiny_config


def _batches(input_fn, limit=None):
  out = []
  for features, labels in input_fn().take(limit or -1):
    out.append((features[IMAGES_KEY].numpy(), labels.numpy()))
  return out


def test_train_batches_are_full_distorted_and_float(cifar10_dir):
  cfg = tiny_config()
  source = sources.get_source(cfg, cifar10_dir)
  assert (source.num_train, source.num_eval, source.num_classes) == (200, 50, 10)
  batches = _batches(make_input_fn(cfg, source, training=True), limit=30)
  assert len(batches) == 30  # Repeats past one epoch (200 / 16 = 12.5).
  for images, labels in batches:
    assert images.shape == (16, 32, 32, 3) and images.dtype == np.float32
    assert labels.shape == (16,) and labels.dtype == np.int32
  # Per-image standardization: each image has mean ~0 and std ~1.
  images = batches[0][0]
  np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(images.std(axis=(1, 2, 3)), 1, atol=1e-2)


def test_eval_covers_every_record_exactly_once(cifar10_dir):
  cfg = tiny_config()
  source = sources.get_source(cfg, cifar10_dir)
  batches = _batches(make_input_fn(cfg, source, training=False))
  assert [len(l) for _, l in batches] == [16, 16, 16, 2]  # Remainder kept.
  labels = np.concatenate([l for _, l in batches])
  want = np.concatenate([l.numpy()[None] for _, l in source.records("test")])
  np.testing.assert_array_equal(labels, want)
  again = np.concatenate([i for i, _ in _batches(
      make_input_fn(cfg, source, training=False))])
  np.testing.assert_array_equal(np.concatenate([i for i, _ in batches]), again)


def test_tutorial_crops_to_24(cifar10_dir):
  cfg = tiny_config(experiment="cifar10_tutorial")
  source = sources.get_source(cfg, cifar10_dir)
  for training in (True, False):
    images, _ = _batches(make_input_fn(cfg, source, training), limit=1)[0]
    assert images.shape[1:] == (24, 24, 3)


def test_synthetic_source_needs_no_files():
  cfg = tiny_config("data.name=synthetic", "data.synthetic_train_size=40",
                    "data.synthetic_eval_size=20")
  source = sources.get_source(cfg, "/nonexistent")
  batches = _batches(make_input_fn(cfg, source, training=False))
  assert sum(len(l) for _, l in batches) == 20
  assert all(0 <= l.min() and l.max() < 10 for _, l in batches)


def test_input_context_splits_the_global_batch(cifar10_dir):
  cfg = tiny_config()
  source = sources.get_source(cfg, cifar10_dir)
  ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                   num_replicas_in_sync=2)
  features, labels = next(iter(make_input_fn(cfg, source, True)(
      input_context=ctx)))
  assert labels.shape == (8,)


def _record_keys(cfg, source, batches):
  """Each training image's source record (augment off: image = record / 255)."""
  records = {im.numpy().tobytes(): int(l) for im, l in source.records("train")}
  keys = []
  for images, labels in _batches(make_input_fn(cfg, source, training=True),
                                 limit=batches):
    for image, label in zip(images, labels):
      key = np.round(image * 255).astype(np.uint8).tobytes()
      assert records[key] == label  # Image and label of the same record.
      keys.append(key)
  return keys, list(records)


def test_two_workers_read_disjoint_shards_that_cover_the_data(cifar10_dir):
  """Chief and worker of a parameter-server cluster each train on one half."""
  cfg = tiny_config()
  cfg.data.augment = []
  source = sources.get_source(cfg, cifar10_dir)
  cluster = {"chief": ["h0:1"], "worker": ["h1:1"], "ps": ["h2:1"]}
  shards = []
  for role in ("chief", "worker"):
    task = distribute.read_tf_config({"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": role, "index": 0}})})
    input_fn = distribute.shard_for_worker(
        make_input_fn(cfg, source, training=True), task)
    # 13 batches of 16: more than two passes over a 100-record half.
    shards.append({np.round(image * 255).astype(np.uint8).tobytes()
                   for images, _ in _batches(input_fn, limit=13)
                   for image in images})
  everything = {im.numpy().tobytes() for im, _ in source.records("train")}
  assert len(everything) == 200
  assert len(shards[0]) == len(shards[1]) == 100
  assert not shards[0] & shards[1]
  assert shards[0] | shards[1] == everything


def test_batch_pipeline_draws_each_record_once_per_epoch(cifar10_dir):
  cfg = tiny_config("train.seed=3")
  cfg.data.augment = []
  source = sources.get_source(cfg, cifar10_dir)
  keys, in_file_order = _record_keys(cfg, source, 400 // 16)  # Two epochs.
  first, second = keys[:200], keys[200:]
  assert len(set(first)) == len(set(second)) == 200  # Each a permutation,
  assert first != second and first != in_file_order  # drawn afresh, and
  # the batch that straddles the epochs is full (25 batches of 16).
  assert _record_keys(cfg, source, 3)[0] == keys[:48]  # Seeded: repeatable.


def test_batch_pipeline_without_shuffle_keeps_file_order(cifar10_dir):
  cfg = tiny_config("data.shuffle_buffer=1")
  cfg.data.augment = []
  source = sources.get_source(cfg, cifar10_dir)
  keys, in_file_order = _record_keys(cfg, source, 13)
  assert keys == in_file_order + in_file_order[:8]


def test_train_batches_are_standardized_float_images(cifar10_dir):
  cfg = tiny_config()
  source = sources.get_source(cfg, cifar10_dir)
  (images, labels), = _batches(make_input_fn(cfg, source, True), limit=1)
  assert images.shape == (16, 32, 32, 3) and images.dtype == np.float32
  assert labels.shape == (16,) and labels.dtype == np.int32
  np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 0, atol=1e-4)


def test_the_removed_per_image_pipeline_is_refused_with_the_fix():
  with pytest.raises(ConfigError, match="data.pipeline='per_image' is not one "
                     "of: batch.*data.pipeline=batch"):
    tiny_config("data.pipeline=per_image")
