"""data.source=tfds through tfds.testing.mock_data, and its error when absent."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from estimator_cifar.data import sources
from estimator_cifar.data.input_pipeline import make_input_fn
from estimator_cifar.errors import DataError
from tests.testutil import tiny_config

NUM_TRAIN, NUM_TEST, MOCK_EXAMPLES = 120, 30, 6


def write_metadata(tfds_dir: str, name: str) -> None:
  """What `tfds build` leaves besides the shards: dataset_info with split sizes.

  mock_data(policy=USE_FILES) then serves random examples for the splits this
  info declares, so the source sees a prepared dataset without any download.
  """
  builder = tfds.builder(name, data_dir=tfds_dir)
  splits = [tfds.core.SplitInfo(
      name=split, shard_lengths=[n], num_bytes=0,
      filename_template=tfds.core.ShardedFileTemplate(
          data_dir=builder.data_path, dataset_name=name, split=split,
          filetype_suffix="tfrecord"))
            for split, n in (("train", NUM_TRAIN), ("test", NUM_TEST))]
  builder.info.set_splits(tfds.core.SplitDict(splits))
  os.makedirs(builder.data_path, exist_ok=True)
  builder.info.write_to_directory(builder.data_path)


def _mock(tfds_dir):
  return tfds.testing.mock_data(num_examples=MOCK_EXAMPLES,
                                policy=tfds.testing.MockPolicy.USE_FILES,
                                data_dir=tfds_dir)


def _records(source, split):
  out = []
  with tf.Graph().as_default():
    item = tf.compat.v1.data.make_one_shot_iterator(
        source.records(split)).get_next()
    with tf.compat.v1.Session() as sess:
      while True:
        try:
          out.append(sess.run(item))
        except tf.errors.OutOfRangeError:
          return out


@pytest.mark.slow
@pytest.mark.parametrize("name,label,classes", [
    ("cifar10", "fine", 10), ("cifar100", "fine", 100), ("cifar100", "coarse", 20)])
def test_tfds_source_reads_mocked_dataset(tmp_path, name, label, classes):
  tfds_dir = str(tmp_path)
  write_metadata(tfds_dir, name)
  cfg = tiny_config(f"data.source=tfds,data.name={name},data.label={label},"
                    f"data.tfds_dir={tfds_dir}")
  with _mock(tfds_dir):
    source = sources.get_source(cfg, None)
    assert (source.name, source.num_classes) == (name, classes)
    assert (source.num_train, source.num_eval) == (NUM_TRAIN, NUM_TEST)
    assert len(source.label_names) == classes
    records = _records(source, "test")
    assert len(records) == MOCK_EXAMPLES
    for image, lab in records:
      assert image.shape == (32, 32, 3) and image.dtype == np.uint8
      assert lab.dtype == np.int32 and 0 <= lab < classes
    # And through the real input pipeline: one distorted training batch.
    with tf.Graph().as_default():
      features, labels = tf.compat.v1.data.make_one_shot_iterator(
          make_input_fn(cfg, source, training=True)()).get_next()
      with tf.compat.v1.Session() as sess:
        images, labs = sess.run([features["images"], labels])
  assert images.shape == (16, 32, 32, 3) and images.dtype == np.float32
  assert labs.shape == (16,) and np.all((labs >= 0) & (labs < classes))


def test_tfds_fine_and_coarse_labels_are_different_features(tmp_path):
  tfds_dir = str(tmp_path)
  write_metadata(tfds_dir, "cifar100")
  labels = {}
  with _mock(tfds_dir):
    for kind in ("fine", "coarse"):
      cfg = tiny_config(f"data.source=tfds,data.name=cifar100,data.label={kind},"
                        f"data.tfds_dir={tfds_dir}")
      labels[kind] = [int(lab) for _, lab in
                      _records(sources.get_source(cfg, None), "train")]
  assert labels["fine"] != labels["coarse"]  # Mocked values differ per feature.


def test_unprepared_tfds_dataset_is_a_clear_data_error(tmp_path):
  cfg = tiny_config(f"data.source=tfds,data.tfds_dir={tmp_path}")
  with pytest.raises(DataError) as info:
    sources.get_source(cfg, None)
  message = str(info.value)
  assert "cifar10 is not prepared" in message and str(tmp_path) in message
  assert f"tfds build cifar10 --data_dir={tmp_path}" in message
  assert "data.source=binary" in message
  assert not (tmp_path / "downloads").exists()  # Nothing was fetched.
