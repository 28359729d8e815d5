"""Resolves `data.*` into a DataSource: sizes, classes, names and record readers.

Resolution happens once, before any graph is built: files are found (extracted
or downloaded if needed), counted and checked, so a bad data_dir fails at once
with a clear message and the per-step path never checks anything.
"""

import os

import numpy as np

from estimator_cifar import paths
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import cifar, cifar_binary
from estimator_cifar.data.cifar import DatasetSpec
from estimator_cifar.data.source import DataSource

SYNTHETIC_CHUNK = 1000  # Records generated together.


def default_data_dir() -> str:
  """The package's cache dir (paths.cache_dir)."""
  return paths.cache_dir()


def get_source(cfg: ExperimentConfig, data_dir: str | None) -> DataSource:
  """Builds the DataSource for `cfg.data` (binary files, tfds, a folder of
  class folders, or synthetic), holding out `data.validation_size` training
  images as the validation split (validation_split.py).

  Raises:
    DataError: see `cifar_binary.locate`, `count_records`, `check_labels`,
      the other sources' `get_source`, and `validation_split.choose`.
  """
  source = _full_source(cfg, data_dir)
  if cfg.data.validation_size > 0:
    from estimator_cifar.data import validation_split
    return validation_split.apply(source, cfg.data.validation_size)
  return source


def _full_source(cfg: ExperimentConfig, data_dir: str | None) -> DataSource:
  """The DataSource of `cfg.data` with nothing held out (see get_source)."""
  data = cfg.data
  layout = cifar.DATASETS[data.name]
  if data.source == "folder":
    from estimator_cifar.data import folder_source
    return folder_source.get_source(layout, data_dir or default_data_dir())
  if data.name == cifar.SYNTHETIC.name:
    return _synthetic(layout, data.synthetic_train_size, data.synthetic_eval_size)
  if data.source == "tfds":
    from estimator_cifar.data import tfds_source
    return tfds_source.get_source(cfg)
  kind = layout.label_kind(data.label)
  folder = cifar_binary.locate(data_dir or default_data_dir(), layout)
  files = {split: [os.path.join(folder, f) for f in names] for split, names in
           (("train", layout.train_files), ("test", layout.test_files))}
  counts = {split: cifar_binary.count_records(paths, layout)
            for split, paths in files.items()}
  if data.check_labels:
    cifar_binary.check_labels(files["train"] + files["test"], layout, kind)
  read = cifar_binary.reader(layout, kind)
  return DataSource(
      name=data.name, num_classes=layout.num_classes[kind],
      num_train=sum(counts["train"]), num_eval=sum(counts["test"]),
      label_names=cifar_binary.read_label_names(folder, layout, kind),
      records=lambda split: cifar_binary.record_dataset(
          files[split], counts[split], read),
      image_shape=layout.image_shape, files=files, file_records=counts, read_records=read,
      read_labels=lambda split: np.concatenate(
          [cifar_binary.read_labels(path, layout, kind) for path in files[split]]))


def _synthetic(spec: DatasetSpec, num_train: int, num_eval: int) -> DataSource:
  """Random images and labels of the spec's shapes, the same on every epoch.

  Generated SYNTHETIC_CHUNK records at a time, the image bytes as bits of
  uint32 draws: one record at a time would pay an op dispatch per record.
  """
  classes = spec.num_classes["fine"]

  def records(split):
    import tensorflow as tf
    salt = 0 if split == "train" else 1

    def make(indices):
      count = tf.shape(indices)[0]
      seed = tf.stack([tf.cast(indices[0], tf.int32), salt])
      words = tf.random.stateless_uniform([count, spec.image_bytes // 4], seed,
                                          dtype=tf.uint32, minval=None,
                                          maxval=None)
      images = tf.reshape(tf.bitcast(words, tf.uint8), [count, *spec.image_shape])
      labels = tf.random.stateless_uniform([count], seed + [0, 2], 0, classes,
                                           tf.int32)
      return images, labels

    n = num_train if split == "train" else num_eval
    ds = tf.data.Dataset.range(n).batch(SYNTHETIC_CHUNK)
    return ds.map(make, num_parallel_calls=tf.data.AUTOTUNE).unbatch()

  return DataSource(spec.name, classes, num_train, num_eval,
                    [str(i) for i in range(classes)], records, spec.image_shape)
