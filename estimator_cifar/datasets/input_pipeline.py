"""The train and eval `input_fn`s: tf.data only, nothing in Python per step.

Train: records -> cache (decoded uint8 kept in memory: CIFAR fits) -> shuffle
-> repeat -> distort -> batch (full batches only) -> prefetch.
Eval: records -> central crop/standardize -> batch, keeping the remainder
batch, so every test record is evaluated exactly once.

Features are a dict `{"images": float32 [N, S, S, 3]}`, labels int32 [N].
"""

import tensorflow as tf

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.datasets import augment
from estimator_cifar.datasets.sources import DataSource

IMAGES_KEY = "images"


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
    if training:
      ds = ds.cache().shuffle(cfg.data.shuffle_buffer, seed=seed,
                              reshuffle_each_iteration=True).repeat()
      transform = lambda image, label: (
          {IMAGES_KEY: augment.train_transform(image, cfg.data, seed)}, label)
      ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
      ds = ds.batch(batch, drop_remainder=True)
    else:
      transform = lambda image, label: (
          {IMAGES_KEY: augment.eval_transform(image, cfg.data)}, label)
      ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE).batch(batch)
    return ds.prefetch(tf.data.AUTOTUNE)

  return input_fn
