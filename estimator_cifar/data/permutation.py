"""One random order per epoch (in memory) or per block (streamed), drawn from a seed.

The order comes from a stateless seed, so a seeded run repeats it. The batch
pipelines never materialize the permuted split: each batch is one gather of
its records from the split in place, which saves a copy of the whole split
per epoch and the memory it took (docs/scaling.md has the figures).
"""

import tensorflow as tf


def order(labels: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """A uniformly random permutation of range(len(labels)), from `seed` [2]."""
  return tf.argsort(tf.random.stateless_uniform(tf.shape(labels), seed))


def permuted_batches(split, seed, batch: int) -> tf.data.Dataset:
  """The split in the order drawn from `seed`, as `batch`-record gathers.

  The last piece is shorter when `batch` does not divide the split; a
  following `rebatch` joins it to the next split's first records.
  """
  images, labels = split
  indices = order(labels, seed)
  starts = tf.data.Dataset.range(
      0, tf.cast(tf.shape(indices)[0], tf.int64), batch)

  def piece(start):
    part = indices[start:start + batch]
    return tf.gather(images, part), tf.gather(labels, part)

  return starts.map(piece)
