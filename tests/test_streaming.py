"""data.in_memory: the streamed train split gives the in-memory path's records.

The session's small CIFAR-10 files (5 files of 40 records) are read both ways;
an epoch is 200 records, 10 batches of 20.
"""


import os

import numpy as np
import pytest

from estimator_cifar.data import cifar, sources, streaming
from estimator_cifar.data.input_pipeline import IMAGES_KEY, make_input_fn
from estimator_cifar.engine import modes
from tests.testutil import tiny_config

EPOCH = ["train.batch_size=20", "train.seed=5"]
slow = pytest.mark.slow


def _epoch(cfg, data_dir, batches=10):
  source = sources.get_source(cfg, data_dir)
  images, labels = [], []
  for features, label in make_input_fn(cfg, source, training=True)().take(batches):
    images.append(features[IMAGES_KEY].numpy())
    labels.append(label.numpy())
  return np.concatenate(images), np.concatenate(labels)


def _rows(images, labels) -> list[bytes]:
  """Each record as bytes (label first), sorted: the epoch as a multiset."""
  return sorted(bytes([int(l)]) + im.tobytes() for im, l in zip(images, labels))


@slow
def test_an_epoch_streams_the_records_of_the_in_memory_path(cifar10_dir):
  common = EPOCH + ["data.augment=[]"]
  streamed = _epoch(tiny_config("data.in_memory=false", *common), cifar10_dir)
  in_memory = _epoch(tiny_config("data.in_memory=true", *common), cifar10_dir)
  assert streamed[0].shape == (200, 32, 32, 3)
  assert _rows(*streamed) == _rows(*in_memory)


@slow
def test_the_order_changes_from_epoch_to_epoch(cifar10_dir):
  cfg = tiny_config("data.in_memory=false", "data.augment=[]", *EPOCH)
  images, labels = _epoch(cfg, cifar10_dir, batches=20)
  first, second = _rows(images[:200], labels[:200]), _rows(images[200:], labels[200:])
  assert first == second  # The same records...
  assert not np.array_equal(images[:200], images[200:])  # ...in a new order.


@slow
def test_streaming_applies_the_augmentations(cifar10_dir):
  plain = _epoch(tiny_config("data.in_memory=true", "data.augment=[]", *EPOCH),
                 cifar10_dir)
  originals = set(_rows(*plain))
  images, labels = _epoch(tiny_config("data.in_memory=false",
                                      "data.augment=[flip]", *EPOCH), cifar10_dir)
  flipped = 0
  for image, label in zip(images, labels):
    as_is = _rows([image], [label])[0]
    mirrored = _rows([image[:, ::-1]], [label])[0]
    assert as_is in originals or mirrored in originals
    flipped += as_is not in originals
  assert 50 <= flipped <= 150  # About half of the 200, p(outside) < 1e-6.
  # And the default distortions: crop, flip, standardize.
  images, _ = _epoch(tiny_config("data.in_memory=false", *EPOCH), cifar10_dir, 1)
  np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(images.std(axis=(1, 2, 3)), 1, atol=1e-2)


@pytest.mark.parametrize("available_mb, streams", [(1, True), (10000, False)])
def test_auto_chooses_by_size_against_available_memory(
    cifar10_dir, monkeypatch, caplog, available_mb, streams):
  monkeypatch.setattr(streaming, "available_memory",
                      lambda: available_mb * 2**20)
  cfg = tiny_config()  # data.in_memory=auto, the default.
  source = sources.get_source(cfg, cifar10_dir)
  assert streaming.split_bytes(source) == 200 * 3073
  assert streaming.should_stream(cfg, source) is streams
  line = [r.getMessage() for r in caplog.records if "in_memory=auto" in r.getMessage()]
  assert len(line) == 1
  assert ("streaming it from the files" if streams else "holding it in memory") \
      in line[0]


def test_explicit_choice_needs_no_memory_figure(cifar10_dir, monkeypatch):
  monkeypatch.setattr(streaming, "available_memory", lambda: 1 / 0)
  source = sources.get_source(tiny_config(), cifar10_dir)
  assert streaming.should_stream(tiny_config("data.in_memory=false"), source)
  assert not streaming.should_stream(tiny_config("data.in_memory=true"), source)


def test_bad_choice_is_a_config_error():
  from estimator_cifar.errors import ConfigError
  with pytest.raises(ConfigError, match="data.in_memory='maybe' is not one of"):
    tiny_config("data.in_memory=maybe")


@slow
def test_training_streams_with_a_loop(cifar10_dir, tmp_path):
  cfg = tiny_config("data.in_memory=false", "train.steps_per_loop=2",
                    "train.steps=6")
  modes.run(cfg, str(tmp_path), "train", cifar10_dir)
  import tensorflow as tf
  assert tf.train.load_checkpoint(str(tmp_path)).get_tensor("global_step") == 6


@pytest.mark.parametrize("kind", ["fine", "coarse"])
def test_read_records_reads_any_span_of_a_file(tmp_path, kind):
  # CIFAR-100's layout (two label bytes), 2,500 records: whole chunks of
  # 1,000 and a short last one, as the streamed reads take them.
  from estimator_cifar.data import cifar_binary
  layout = cifar.CIFAR100
  records = np.random.default_rng(3).integers(
      0, 256, (2500, layout.record_bytes), dtype=np.uint8)
  path = tmp_path / "train.bin"
  records.tofile(path)
  for first, count in [(0, 1000), (1000, 1000), (2000, 500), (7, 3)]:
    images, labels = cifar_binary.read_records(str(path), first, count, layout, kind)
    expected = records[first:first + count]
    np.testing.assert_array_equal(
        labels.numpy(), expected[:, layout.label_offset[kind]])
    np.testing.assert_array_equal(  # Channel-major on disk, HWC in memory.
        images.numpy(), expected[:, 2:].reshape(count, 3, 32, 32).transpose(0, 2, 3, 1))


def test_read_records_names_a_file_that_shrank(tmp_path):
  from estimator_cifar.data import cifar_binary
  layout = cifar.CIFAR10
  path = tmp_path / "data_batch_1.bin"
  np.zeros((10, layout.record_bytes), np.uint8).tofile(path)
  with pytest.raises(Exception, match="data_batch_1.bin has shrunk to fewer than 12"):
    cifar_binary.read_records(str(path), 8, 4, layout, "fine")


@slow
def test_a_file_cut_short_mid_run_is_an_error_naming_it(tmp_path):
  # A real process streaming real files; one is truncated while it trains.
  import subprocess

  from estimator_cifar.data import fake
  from tests import testutil
  data_dir, model_dir = str(tmp_path / "data"), str(tmp_path / "run")
  fake.write_cifar10(data_dir, train_per_file=2500, test=50, easy=True)
  victim = tmp_path / "data" / "cifar-10-batches-bin" / "data_batch_3.bin"
  overrides = testutil.TINY + ["data.in_memory=false", "train.steps=1000000",
                               "data.shuffle_buffer=1000", "log.every_steps=20"]
  proc = testutil.start_cli(
      "--experiment=resnet_sgd", "--mode=train", f"--model_dir={model_dir}",
      f"--data_dir={data_dir}", "--params_override=" + ",".join(overrides),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  output = testutil.OutputReader(proc)
  try:
    import tensorflow as tf
    testutil.wait_until(lambda: proc.poll() is not None or
                        tf.train.latest_checkpoint(model_dir) is not None,
                        timeout=240, interval=0.2, message="the first checkpoint")
    assert proc.poll() is None, "".join(output.err)[-3000:]  # Still streaming.
    os.truncate(victim, 1000 * 3073)  # 1,000 of its 2,500 records left.
    proc.wait(timeout=testutil.seconds(120))
  finally:
    proc.kill()
    proc.wait()
  err = output.text()[1]
  assert proc.returncode == 2, err[-3000:]
  last = err.strip().splitlines()[-1]
  assert last.startswith("error: ") and str(victim) in last
  assert "has shrunk to fewer than" in last and "Traceback" not in err
  assert victim.exists()  # The user's file is left as it is.
