"""The train split streamed from its files, for splits larger than memory.

Both in-memory pipelines (input_pipeline.py) hold the decoded split, so
memory grows with the split. `data.in_memory` picks the path:

  true   the in-memory pipelines, as before;
  false  stream;
  auto   stream when IN_MEMORY_COPIES x the split's bytes on disk would take
         more than MEMORY_SHARE of the memory available now (psutil); the
         choice and its figures are logged once.

Streaming, per epoch: the files in a fresh random order -> up to
MAX_OPEN_FILES read at once, interleaved in chunks of cifar_binary.PARSE_CHUNK
records, each chunk one numpy read and channel move (`read_records`) ->
blocks of `data.shuffle_buffer` records, each in a fresh random order
(batch-sized gathers, permutation.py, as the in-memory path draws its batches
from the split) -> the batch distortions (augment.py) -> prefetch. Memory is
one block, the next block on its way, and a few chunks per open file,
whatever the split's size.
Records mix within a block only and arrive in their files' order, so the
shuffle is as good as the block is large against the files;
`data.shuffle_buffer` <= 1 keeps the files' order.
A source without train files (tfds, folders, synthetic, or one with a
validation split held out, data/validation_split.py) streams its
`records("train")` in record order instead, in the same blocks.
"""

import math
import os

from absl import logging

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import augment, cifar_binary
from estimator_cifar.data import permutation
from estimator_cifar.data.source import DataSource
from estimator_cifar.model.keys import IMAGES_KEY

# The batch pipeline holds the split in its cache, once more while it builds
# the cache, and batches on their way: three copies, to be safe.
IN_MEMORY_COPIES = 3
MEMORY_SHARE = 0.5
MAX_OPEN_FILES = 8


def available_memory() -> int:
  """Bytes of memory available to new allocations now (psutil)."""
  import psutil
  return psutil.virtual_memory().available


def split_bytes(source: DataSource, split: str = "train") -> int:
  """The split's size on disk (without files: its record count x a record
  of the image's bytes and one label byte)."""
  files = source.files.get(split, [])
  if files:
    return sum(os.path.getsize(path) for path in files)
  count = source.num_train if split == "train" else source.num_eval
  return count * (math.prod(source.image_shape) + 1)


def should_stream(cfg: ExperimentConfig, source: DataSource) -> bool:
  """Whether the train input streams (see the module docstring); logs why."""
  choice = cfg.data.in_memory
  if choice != "auto":
    return choice == "false"
  size, available = split_bytes(source), available_memory()
  stream = IN_MEMORY_COPIES * size > MEMORY_SHARE * available
  logging.info(
      "data.in_memory=auto: the train split is %.0f MB on disk, %.0f MB of "
      "memory is available; %s.", size / 2**20, available / 2**20,
      "streaming it from the files" if stream else
      "holding it in memory")
  return stream


def train_dataset(cfg: ExperimentConfig, source: DataSource, batch: int,
                  seed: int | None, input_context=None):
  """Distorted training batches streamed from the source's files."""
  import tensorflow as tf
  shuffle = cfg.data.shuffle_buffer > 1
  files = source.files.get("train", [])
  if files and source.read_records is not None:
    parts = cifar_binary.file_dataset(files, source.file_records["train"])
    if shuffle:
      parts = parts.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    chunks = parts.interleave(
        lambda path, count: cifar_binary.file_chunks(source.read_records, path, count),
        cycle_length=min(len(files), MAX_OPEN_FILES),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  else:
    chunks = source.records("train").batch(cifar_binary.PARSE_CHUNK)
  if input_context is not None:
    chunks = chunks.shard(input_context.num_input_pipelines,
                          input_context.input_pipeline_id)
    batch = input_context.get_per_replica_batch_size(batch)
  if shuffle:
    # Blocks of shuffle_buffer records, each in a fresh random order, as the
    # in-memory path permutes the split: cheaper per record than a shuffle
    # buffer, and each epoch's records exactly once. The next block is read
    # while this one is consumed.
    blocks = chunks.rebatch(cfg.data.shuffle_buffer).repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    blocks = tf.data.Dataset.zip((blocks, seeds)).prefetch(1)
  else:
    blocks = chunks.repeat()
  # Batch-sized gathers from each block (permutation.py), then rebatch
  # carries a block's last records into the next block's first batch.
  if shuffle:
    blocks = blocks.flat_map(lambda block, block_seed:
                             permutation.permuted_batches(block, block_seed, batch))
  ds = blocks.rebatch(batch, drop_remainder=True).map(
      lambda images, labels: (
          {IMAGES_KEY: augment.train_transform(images, cfg.data, seed)},
          labels), num_parallel_calls=tf.data.AUTOTUNE)
  return ds.prefetch(tf.data.AUTOTUNE)
