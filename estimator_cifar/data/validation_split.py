"""`data.validation_size`: a validation split held out of the training images.

Which images are held out is a pure function of the train split's labels in
record order and the size: each class gives a share proportional to its count
(largest-remainder rounding, so the shares sum to the size and each is within
one image of proportional), drawn at random within the class from a fixed
seed, SPLIT_SEED, that `train.seed` does not move. Every task of a cluster,
every resumed run and every later eval therefore holds out the same images;
the indices' digest is recorded in the model_dir (rundir/data_split.py).

The split is a filter on the train split's records by their index, in
tf.data, a chunk of records at a time: one-shot iterators, sharding and
MirroredStrategy see a plain dataset, and every source works unchanged.
"""

import dataclasses
import hashlib

import numpy as np
from absl import logging

from estimator_cifar.data.source import TRAIN, VALIDATION, DataSource
from estimator_cifar.errors import DataError

# Fixed, not train.seed: runs with different seeds must hold out the same images.
SPLIT_SEED = 20151210
RULE = (f"stratified by class, seed {SPLIT_SEED}, largest-remainder quotas, "
        "a random choice within each class")
LABEL_CHUNK = 4096  # Labels read together when a source has no label reader.
SELECT_CHUNK = 1000  # Records filtered together: one op per record is slow.


def quotas(counts: np.ndarray, size: int) -> np.ndarray:
  """Each class's share of `size`, proportional to its `counts`.

  Largest remainder: the floors of the proportional shares, plus one for the
  classes with the largest fractions (the lower class first on a tie) until
  the shares sum to `size`.
  """
  exact = counts * size / counts.sum()
  shares = np.floor(exact).astype(np.int64)
  fractions = exact - shares
  # A stable sort keeps ties in class order.
  extra = np.argsort(-fractions, kind="stable")[:size - shares.sum()]
  shares[extra] += 1
  return shares


def choose(labels: np.ndarray, size: int, num_classes: int) -> np.ndarray:
  """The held-out records: sorted int64 indices into the train split.

  Args:
    labels: the train split's labels, in record order.
    size: how many records to hold out.
    num_classes: the dataset's classes (labels are below it).

  Raises:
    DataError: `size` holds out every training image, or every image of
      some class.
  """
  labels = np.asarray(labels, np.int64)
  if size >= len(labels):
    raise DataError(
        f"data.validation_size={size} holds out all {len(labels)} training "
        f"images, leaving none to train on. Pass a data.validation_size "
        f"below {len(labels)} (a tenth is usual: {len(labels) // 10}).")
  counts = np.bincount(labels, minlength=num_classes)
  shares = quotas(counts, size)
  emptied = np.flatnonzero((shares == counts) & (counts > 0))
  if emptied.size:
    c = int(emptied[0])
    raise DataError(
        f"data.validation_size={size} of the {len(labels)} training images "
        f"holds out all {counts[c]} images of class {c}, leaving it none to "
        f"train on. Pass a smaller data.validation_size, or add training "
        f"images of class {c}.")
  chosen = []
  for c in np.flatnonzero(shares):
    members = np.flatnonzero(labels == c)
    # RandomState's streams are frozen across numpy versions: the digest a
    # model_dir records stays valid after an upgrade. One stream per class
    # keeps a class's choice independent of the others.
    draw = np.random.RandomState([SPLIT_SEED, int(c)]).permutation(len(members))
    chosen.append(members[draw[:shares[c]]])
  return np.sort(np.concatenate([np.empty(0, np.int64), *chosen]))


def digest(indices: np.ndarray) -> str:
  """sha256 of the sorted indices as little-endian int64 bytes (hex)."""
  return hashlib.sha256(np.asarray(indices, "<i8").tobytes()).hexdigest()


def apply(source: DataSource, size: int) -> DataSource:
  """`source` with `size` of its training images held out as 'validation'.

  The train split's labels are read once, here (their count, what training
  reads, less `size` is the new num_train). The returned source's
  'train' records are the kept ones and its 'validation' records the held
  out ones, both in record order; 'test' is unchanged. It has no train files,
  so the streaming pipeline (data/streaming.py) reads the filtered records.

  Raises:
    DataError: see `choose`.
  """
  labels = labels_of(source, TRAIN)
  indices = choose(labels, size, source.num_classes)
  held_out = np.zeros(len(labels), bool)
  held_out[indices] = True
  masks = {TRAIN: ~held_out, VALIDATION: held_out}
  read_records = source.records

  def records(split: str):
    if split not in masks:
      return read_records(split)
    return _select(read_records(TRAIN), masks[split])

  def split_labels(split: str) -> np.ndarray:
    # Known already for train and validation: no TensorFlow needed, so the
    # validation labels can be read inside a finalized graph (exporters).
    if split not in masks:
      return labels_of(source, split)
    return labels[masks[split]]

  info = {"validation_size": size, "rule": RULE, "seed": SPLIT_SEED,
          "indices_sha256": digest(indices),
          "per_class": np.bincount(labels[indices],
                                   minlength=source.num_classes).tolist()}
  logging.info("data.validation_size=%d: held out %d of the %d training "
               "images as the validation split (indices sha256 %s...).",
               size, size, len(labels), info["indices_sha256"][:12])
  return dataclasses.replace(
      source, records=records, num_train=len(labels) - size,
      num_validation=size, split_info=info,
      files={s: f for s, f in source.files.items() if s != TRAIN},
      file_records={s: n for s, n in source.file_records.items() if s != TRAIN},
      read_labels=split_labels)


def labels_of(source: DataSource, split: str) -> np.ndarray:
  """A split's int labels in record order: the source's label reader, or its
  records read through once, a chunk at a time (images read and dropped)."""
  if source.read_labels is not None:
    return np.asarray(source.read_labels(split), np.int64)
  import tensorflow as tf
  v1 = tf.compat.v1
  chunks = []
  # A graph of its own: works whether the caller runs eagerly or is
  # building a graph (an eager iterator fails inside a graph).
  with tf.Graph().as_default():
    next_chunk = v1.data.make_one_shot_iterator(source.records(split).map(
        lambda image, label: label).batch(LABEL_CHUNK)).get_next()
    with v1.Session() as session:
      while True:
        try:
          chunks.append(session.run(next_chunk))
        except tf.errors.OutOfRangeError:
          break
  return (np.concatenate(chunks) if chunks else np.zeros([0])).astype(np.int64)


def _select(records, keep: np.ndarray):
  """The records whose index `keep` marks, in order."""
  import tensorflow as tf

  def pick(chunk, images, labels):
    # The mask is a constant of the dataset's own function: nothing is
    # captured from the graph that builds it.
    start = chunk * SELECT_CHUNK
    mask = tf.constant(keep)[start:start + tf.shape(labels, out_type=tf.int64)[0]]
    return tf.boolean_mask(images, mask), tf.boolean_mask(labels, mask)

  chunks = records.batch(SELECT_CHUNK).enumerate()
  return chunks.map(lambda chunk, batch: pick(chunk, *batch)).unbatch()
