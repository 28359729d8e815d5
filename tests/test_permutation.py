"""permutation.py: batch-sized gathers give the permuted split, record for record."""

import numpy as np
import tensorflow as tf

from estimator_cifar.data import permutation


def test_permuted_batches_are_the_permuted_split_cut_into_batches():
  images = np.arange(11 * 2 * 2 * 3, dtype=np.uint8).reshape(11, 2, 2, 3)
  labels = np.arange(11, dtype=np.int32)
  seed = tf.constant([4, 9], tf.int64)
  split = (tf.constant(images), tf.constant(labels))
  order = permutation.order(split[1], seed).numpy()
  whole_images, whole_labels = images[order], labels[order]
  pieces = list(permutation.permuted_batches(split, seed, 4))
  assert [int(p[1].shape[0]) for p in pieces] == [4, 4, 3]  # The last is short.
  np.testing.assert_array_equal(np.concatenate([p[1] for p in pieces]), whole_labels)
  np.testing.assert_array_equal(np.concatenate([p[0] for p in pieces]), whole_images)
  assert sorted(whole_labels) == list(range(11))  # Each record once.
  assert list(whole_labels) != list(range(11))


def test_rebatch_joins_a_short_last_piece_to_the_next_splits_first_records():
  split = (tf.zeros([10, 1, 1, 1], tf.uint8), tf.range(10))
  seeds = tf.data.Dataset.from_tensor_slices(tf.constant([[1, 2], [3, 4]], tf.int64))
  ds = tf.data.Dataset.zip((tf.data.Dataset.from_tensors(split).repeat(2), seeds))
  batches = ds.flat_map(lambda s, seed: permutation.permuted_batches(s, seed, 4))
  labels = [b[1].numpy() for b in batches.rebatch(4, drop_remainder=True)]
  assert [len(b) for b in labels] == [4] * 5
  flat = np.concatenate(labels)
  assert sorted(flat[:10]) == sorted(flat[10:]) == list(range(10))  # Two epochs.
