"""The train and eval `input_fn`s: tf.data only, nothing in Python per step.

Train: the split's records are decoded once into one uint8 tensor held in
memory (CIFAR's 50000 images are 150 MB); each epoch draws a fresh full
permutation (a better shuffle than a buffer, and no buffer to fill before the
first step) and each batch gathers its records from the split in place
(permutation.py), then full batches are distorted as a whole (augment.py) ->
prefetch.
Train, a split too large for memory (`data.in_memory`): streamed from the
files with the same distortions (streaming.py).
Eval: the validation or the test split's records -> batch, keeping the
remainder batch so every record is evaluated exactly once -> central
crop/standardize of the whole batch.

Features are a dict `{"images": float32 [N, S, S, 3]}`, labels int32 [N].
"""

import tensorflow as tf

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import augment, permutation, streaming
from estimator_cifar.data.source import TEST, TRAIN, DataSource
from estimator_cifar.loaded_code import as_loaded
from estimator_cifar.model.keys import IMAGES_KEY


def make_input_fn(cfg: ExperimentConfig, source: DataSource, training: bool,
                  split: str = TEST):
  """Returns an Estimator input_fn for the train split or an eval split.

  Args:
    cfg: the experiment's config.
    source: the data.
    training: the train split's input (distorted, repeated); else `split`'s.
    split: the eval split, source.VALIDATION or TEST; ignored when training.

  The input_fn accepts an optional `input_context` (a tf.distribute
  InputContext): with several input pipelines each reads its own shard and
  batches its per-replica share of the global batch.
  """
  seed = cfg.train.seed or None
  # Decided (and logged) once: large splits stream from the files.
  stream = training and streaming.should_stream(cfg, source)

  def input_fn(params=None, input_context=None):
    del params  # Everything comes from cfg.
    if stream:
      return streaming.train_dataset(cfg, source, cfg.train.batch_size, seed,
                                     input_context)
    ds = source.records(TRAIN if training else split)
    batch = cfg.train.batch_size if training else cfg.eval.batch_size
    if input_context is not None:
      ds = ds.shard(input_context.num_input_pipelines,
                    input_context.input_pipeline_id)
      batch = input_context.get_per_replica_batch_size(batch)
    if training:
      return _train_pipeline(cfg, ds, source.num_train, batch, seed)
    ds = ds.batch(batch).map(
        lambda images, labels: (
            {IMAGES_KEY: augment.eval_transform(images, cfg.data)}, labels),
        num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)

  return as_loaded(input_fn)


def _train_pipeline(cfg: ExperimentConfig, records: tf.data.Dataset,
                    num_records: int, batch: int,
                    seed: int | None) -> tf.data.Dataset:
  """Whole split in memory, one permutation per epoch, batch distortions.

  Everything is a dataset op, nothing is captured from the enclosing graph:
  the split is one cached dataset element, so one-shot iterators,
  MirroredStrategy's dataset distribution and every source work unchanged.
  Each epoch draws a full permutation from a stateless seed (the seed
  dataset's next pair) and gathers each batch's records in that order; the
  batches run across epoch boundaries, as with shuffle -> repeat.
  `data.shuffle_buffer` <= 1 keeps the records' order.
  """
  # One batch of the whole split (a shard has at most num_records): batch()
  # sizes its buffers by the batch size when the cardinality is unknown.
  whole = records.batch(max(num_records, 1)).cache().repeat()

  def distort(images, labels):
    return ({IMAGES_KEY: augment.train_transform(images, cfg.data, seed)},
            labels)

  if cfg.data.shuffle_buffer > 1:
    epoch_seeds = tf.data.Dataset.random(seed=seed).batch(2)
    whole = tf.data.Dataset.zip((whole, epoch_seeds)).flat_map(
        lambda split, epoch_seed: permutation.permuted_batches(split, epoch_seed,
                                                               batch))
  # rebatch joins an epoch's last records to the next epoch's first (and
  # slices the split into batches when it keeps its order).
  ds = whole.rebatch(batch, drop_remainder=True)
  return ds.map(distort, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
      tf.data.AUTOTUNE)
