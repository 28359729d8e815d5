"""data.validation_size: a validation split held out of the training images,
disjoint from what training reads, stratified, the same in every process, and
recorded in the model_dir so that it never moves under a run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import rundir
from estimator_cifar.data import fake, sources, validation_split
from estimator_cifar.data.input_pipeline import IMAGES_KEY, make_input_fn
from estimator_cifar.data.source import TEST, TRAIN, VALIDATION
from estimator_cifar.errors import CheckpointError, ConfigError, DataError
from estimator_cifar.rundir import data_split, identity
from tests.testutil import seconds, subprocess_env, tiny_config

# 5 files of 40 noise images (each unique), 40 of the 200 held out: an epoch
# of the kept 160 is 8 batches of 20.
NUM_TRAIN, HELD_OUT, BATCH = 200, 40, 20
PLAIN = ["data.augment=[]", f"train.batch_size={BATCH}", f"eval.batch_size={BATCH}",
         "train.seed=3"]


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("noise10"))
  fake.write_cifar10(data_dir, train_per_file=NUM_TRAIN // 5, test=10, easy=False)
  return data_dir


def _rows(images, labels) -> list[bytes]:
  """Each record as bytes (label first), sorted: a split as a multiset.
  Float images (the pipelines' x / 255) go back to their uint8 bytes."""
  if images.dtype != np.uint8:
    images = np.rint(images * 255).astype(np.uint8)
  return sorted(bytes([int(l)]) + im.tobytes() for im, l in zip(images, labels))


def _split_rows(source, split):
  pairs = list(source.records(split).as_numpy_iterator())
  return _rows(np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs]))


def _batches(dataset, count=None):
  images, labels = [], []
  for features, label in dataset.take(-1 if count is None else count):
    images.append(features[IMAGES_KEY].numpy())
    labels.append(label.numpy())
  return _rows(np.concatenate(images), np.concatenate(labels))


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_training_never_reads_a_validation_image(noise_dir, in_memory):
  whole = _split_rows(sources.get_source(tiny_config(*PLAIN), noise_dir), TRAIN)
  cfg = tiny_config(*PLAIN, f"data.validation_size={HELD_OUT}",
                    f"data.in_memory={in_memory}")
  source = sources.get_source(cfg, noise_dir)
  assert (source.num_train, source.num_validation) == (NUM_TRAIN - HELD_OUT, HELD_OUT)
  trained = _batches(make_input_fn(cfg, source, training=True)(),
                     source.num_train // BATCH)  # One epoch.
  validation = _batches(make_input_fn(cfg, source, training=False,
                                      split=VALIDATION)())
  assert len(set(whole)) == NUM_TRAIN  # Every image unique: content tells them apart.
  assert len(validation) == HELD_OUT
  assert not set(validation) & set(trained)
  assert sorted(trained + validation) == whole
  assert _split_rows(source, TEST) == _split_rows(
      sources.get_source(tiny_config(*PLAIN), noise_dir), TEST)


def test_shards_of_a_one_shot_iterator_cover_the_validation_split(noise_dir):
  cfg = tiny_config(*PLAIN, f"data.validation_size={HELD_OUT}")
  source = sources.get_source(cfg, noise_dir)
  labels = []
  for shard in range(2):
    context = tf.distribute.InputContext(2, shard, 2)
    with tf.Graph().as_default():
      batch = tf.compat.v1.data.make_one_shot_iterator(make_input_fn(
          cfg, source, training=False, split=VALIDATION)(
              input_context=context)).get_next()
      with tf.compat.v1.Session() as sess:
        while True:
          try:
            labels.append(sess.run(batch)[1])
          except tf.errors.OutOfRangeError:
            break
  assert sum(map(len, labels)) == HELD_OUT
  assert sorted(np.concatenate(labels)) == sorted(source.read_labels(VALIDATION))


@pytest.mark.parametrize("size", [1, 7, 17, 50])
def test_each_class_gives_its_share_within_one_image(size):
  counts = np.array([50, 30, 15, 5, 0, 3])
  labels = np.random.default_rng(0).permutation(np.repeat(np.arange(6), counts))
  indices = validation_split.choose(labels, size, 6)
  assert indices.dtype == np.int64 and len(indices) == size
  assert np.array_equal(indices, np.unique(indices))  # Sorted, distinct.
  held = np.bincount(labels[indices], minlength=6)
  assert np.all(np.abs(held - counts * size / len(labels)) < 1)
  assert np.all(held < np.maximum(counts, 1))  # No class emptied.


def test_the_split_ignores_train_seed_and_holds_in_another_process(noise_dir):
  digests = {sources.get_source(tiny_config(
      f"data.validation_size={HELD_OUT}", f"train.seed={seed}"),
      noise_dir).split_info["indices_sha256"] for seed in (0, 1)}
  child = subprocess.run(
      [sys.executable, "-c",
       "import sys, glob, numpy as np\n"
       "from estimator_cifar.data import cifar, cifar_binary, validation_split as v\n"
       "files = sorted(glob.glob(sys.argv[1] + '/*/data_batch_*.bin'))\n"
       "labels = np.concatenate([cifar_binary.read_labels(f, cifar.CIFAR10, 'fine')"
       " for f in files])\n"
       "print(v.digest(v.choose(labels, int(sys.argv[2]), 10)))",
       noise_dir, str(HELD_OUT)],
      env=subprocess_env(PYTHONHASHSEED="7"), capture_output=True, text=True,
      timeout=seconds(60), check=True)
  assert digests == {child.stdout.strip()}


def test_split_info_records_the_choice(noise_dir):
  source = sources.get_source(tiny_config(f"data.validation_size={HELD_OUT}"),
                              noise_dir)
  info = source.split_info
  assert info["validation_size"] == HELD_OUT
  assert info["seed"] == validation_split.SPLIT_SEED
  assert str(validation_split.SPLIT_SEED) in info["rule"]
  assert info["per_class"] == np.bincount(source.read_labels(VALIDATION),
                                          minlength=10).tolist()
  assert sum(info["per_class"]) == HELD_OUT
  assert not source.files.get(TRAIN)  # Streaming reads the filtered records.


def test_cifar100_coarse_labels_are_stratified(cifar100_dir):
  plain = tiny_config("data.name=cifar100", "data.label=coarse")
  whole = _split_rows(sources.get_source(plain, cifar100_dir), TRAIN)
  source = sources.get_source(tiny_config(
      "data.name=cifar100", "data.label=coarse", "data.validation_size=40"),
      cifar100_dir)
  assert source.num_classes == 20 and len(source.split_info["per_class"]) == 20
  kept, held = _split_rows(source, TRAIN), _split_rows(source, VALIDATION)
  assert len(held) == 40 and sorted(kept + held) == whole
  assert max(row[0] for row in held) < 20


def test_synthetic_and_folder_sources_hold_out_images(tmp_path):
  with tf.Graph().as_default():  # Resolving works while a graph is built too.
    synthetic = sources.get_source(tiny_config(
        "data.name=synthetic", "data.synthetic_train_size=300",
        "data.synthetic_eval_size=10", "data.validation_size=30"), None)
  assert (synthetic.num_train, synthetic.num_validation) == (270, 30)
  assert len(_split_rows(synthetic, TRAIN)) == 270
  rng = np.random.default_rng(1)
  for split, per_class in (("train", 4), ("test", 1)):
    for name in ("ant", "bee", "cat"):
      for i in range(per_class):
        path = tmp_path / split / name / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tf.io.encode_png(
            rng.integers(0, 256, (32, 32, 3), np.uint8)).numpy())
  folder = sources.get_source(tiny_config(
      "data.source=folder", "data.validation_size=3"), str(tmp_path))
  assert folder.split_info["per_class"] == [1, 1, 1]
  held, kept = _split_rows(folder, VALIDATION), _split_rows(folder, TRAIN)
  assert len(kept) == 9 and not set(held) & set(kept)


def test_tfds_source_holds_out_images(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  from tests.test_tfds_source import write_metadata
  write_metadata(str(tmp_path), "cifar10")
  with tfds.testing.mock_data(num_examples=60, data_dir=str(tmp_path),
                              policy=tfds.testing.MockPolicy.USE_FILES):
    source = sources.get_source(tiny_config(
        "data.source=tfds", f"data.tfds_dir={tmp_path}",
        "data.validation_size=3"), None)
    held, kept = _split_rows(source, VALIDATION), _split_rows(source, TRAIN)
  assert (source.num_train, source.num_validation) == (57, 3)
  assert len(held) == 3 and len(kept) == 57 and not set(held) & set(kept)
  assert sum(source.split_info["per_class"]) == 3


def test_bad_sizes_name_the_sizes_and_the_fix(noise_dir):
  with pytest.raises(DataError, match=f"validation_size={NUM_TRAIN} holds out "
                     f"all {NUM_TRAIN} training images.*below {NUM_TRAIN}"):
    sources.get_source(tiny_config(f"data.validation_size={NUM_TRAIN}"), noise_dir)
  labels = np.array([0] * 10 + [1])
  with pytest.raises(DataError, match=r"validation_size=6 of the 11 .* all 1 "
                     "images of class 1.*smaller data.validation_size"):
    validation_split.choose(labels, 6, 2)


def test_a_source_without_a_split_refuses_validation(noise_dir):
  source = sources.get_source(tiny_config(), noise_dir)
  assert source.num_validation == 0 and source.split_info is None
  with pytest.raises(DataError, match="no validation split.*validation_size"):
    make_input_fn(tiny_config(), source, training=False, split=VALIDATION)()


INFO = {"validation_size": 40, "rule": "r", "seed": 1, "indices_sha256": "ab",
        "per_class": [4] * 10}


def test_the_recorded_split_refuses_another_size_or_other_images(tmp_path):
  model_dir = str(tmp_path / "run")
  path = os.path.join(model_dir, data_split.FILENAME)
  data_split.check_and_write(model_dir, INFO, write=False)
  assert not os.path.exists(path)  # Only the writing task records it.
  data_split.check_and_write(model_dir, INFO, write=True)
  with open(path) as f:
    assert json.load(f) == INFO
  data_split.check_and_write(model_dir, dict(INFO), write=True)  # Same: fine.
  with pytest.raises(ConfigError, match="validation_size=40.*validation_size=30"):
    data_split.check_and_write(model_dir, dict(INFO, validation_size=30), write=True)
  with pytest.raises(ConfigError, match="validation_size=40.*validation_size=0"):
    data_split.check_and_write(model_dir, None, write=True)
  with pytest.raises(DataError, match="training data differ"):
    data_split.check_and_write(model_dir, dict(INFO, indices_sha256="cd"), write=True)
  with open(path) as f:
    assert json.load(f) == INFO  # Never rewritten.
  with open(path, "w") as f:
    f.write("{not json")
  with pytest.raises(CheckpointError, match="not readable JSON"):
    data_split.check_and_write(model_dir, INFO, write=True)


def test_config_json_refuses_a_changed_validation_size_even_when_allowed(tmp_path):
  model_dir = str(tmp_path)
  recorded = tiny_config("data.validation_size=40").to_dict()
  rundir.write_config(model_dir, json.dumps(recorded))
  identity.check_config(tiny_config("data.validation_size=40"), model_dir)
  with pytest.raises(ConfigError, match="validation_size=40.*validation_size=10"):
    identity.check_config(tiny_config("data.validation_size=10"), model_dir,
                          allow_change=True)
  del recorded["data"]["validation_size"]  # An older run: held none out.
  rundir.write_config(model_dir, json.dumps(recorded))
  identity.check_config(tiny_config(), model_dir)
  with pytest.raises(ConfigError, match="validation_size=0.*validation_size=5"):
    identity.check_config(tiny_config("data.validation_size=5"), model_dir,
                          allow_change=True)
