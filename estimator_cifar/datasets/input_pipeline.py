"""The train and eval `input_fn`s: tf.data only, nothing in Python per step.

Train, `data.pipeline=batch` (the default): the split's records are decoded
once into one uint8 tensor held in memory (CIFAR's 50000 images are 150 MB);
record indices are shuffled (`data.shuffle_buffer`, reshuffled every epoch),
repeated and batched (full batches only); each batch gathers its images and is
distorted as a whole (batch_augment.py) -> prefetch. Shuffling indices instead
of images means no 50000-image shuffle buffer to fill before the first step,
and one copy of the data instead of two (cache + buffer).
Train, `data.pipeline=per_image`: records -> cache -> shuffle -> repeat ->
per-image distortions (augment.py) -> batch -> prefetch.
Eval: records -> batch, keeping the remainder batch so every test record is
evaluated exactly once -> central crop/standardize of the whole batch.

Features are a dict `{"images": float32 [N, S, S, 3]}`, labels int32 [N].
"""

import tensorflow as tf

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.datasets import augment, batch_augment
from estimator_cifar.datasets.sources import DataSource

IMAGES_KEY = "images"
_WHOLE_SPLIT = 1 << 40  # A batch size larger than any split: one element.


def make_input_fn(cfg: ExperimentConfig, source: DataSource, training: bool):
  """Returns an Estimator input_fn for the train or the eval split.

  The input_fn accepts an optional `input_context` (a tf.distribute
  InputContext): with several input pipelines each reads its own shard and
  batches its per-replica share of the global batch.
  """
  seed = cfg.train.seed or None

  def input_fn(params=None, input_context=None):
    del params  # Everything comes from cfg.
    ds = source.records("train" if training else "test")
    batch = cfg.train.batch_size if training else cfg.eval.batch_size
    if input_context is not None:
      ds = ds.shard(input_context.num_input_pipelines,
                    input_context.input_pipeline_id)
      batch = input_context.get_per_replica_batch_size(batch)
    if not training:
      ds = ds.batch(batch)
      transform = lambda images, labels: (
          {IMAGES_KEY: augment.eval_transform(images, cfg.data)}, labels)
    elif cfg.data.pipeline == "batch":
      return _batch_pipeline(cfg, ds, batch, seed)
    else:
      ds = ds.cache().shuffle(cfg.data.shuffle_buffer, seed=seed,
                              reshuffle_each_iteration=True).repeat()
      ds = ds.map(lambda image, label: (
          {IMAGES_KEY: augment.train_transform(image, cfg.data, seed)}, label),
                  num_parallel_calls=tf.data.AUTOTUNE)
      ds, transform = ds.batch(batch, drop_remainder=True), None
    if transform is not None:
      ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)

  return input_fn


def _batch_pipeline(cfg: ExperimentConfig, records: tf.data.Dataset,
                    batch: int, seed: int | None) -> tf.data.Dataset:
  """Whole split in memory, shuffled indices, batch-level distortions."""
  # Evaluated when the iterator is initialized (not a graph constant: the
  # GraphDef and graph.pbtxt stay small), once per train() call.
  images, labels = records.batch(_WHOLE_SPLIT).get_single_element()
  count = tf.shape(labels, out_type=tf.int64)[0]

  def distort(indices):
    batch_images = tf.gather(images, indices)
    return ({IMAGES_KEY: batch_augment.train_transform(batch_images, cfg.data,
                                                        seed)},
            tf.gather(labels, indices))

  ds = tf.data.Dataset.range(count).shuffle(
      cfg.data.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  ds = ds.repeat().batch(batch, drop_remainder=True)
  return ds.map(distort, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
      tf.data.AUTOTUNE)
