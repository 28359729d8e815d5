"""CIFAR binary records: parsing from handwritten bytes, counts and checks."""

import os

import pytest
import tensorflow as tf

from estimator_cifar.data import cifar, cifar_binary, fake
from estimator_cifar.errors import DataError

CIFAR10 = cifar.CIFAR10


def _one_record(label_bytes: bytes) -> bytes:
  # Channel-major: all 1024 red bytes, then green, then blue. Pixel (y, x) of
  # channel c holds (c * 7 + y * 3 + x) % 256 so every position is checkable.
  body = bytes((c * 7 + y * 3 + x) % 256
               for c in range(3) for y in range(32) for x in range(32))
  return label_bytes + body


def _parse(path, layout, kind):
  ds = cifar_binary.record_dataset([path], [1], cifar_binary.reader(layout, kind))
  return next(iter(ds))


def test_parse_record_from_handwritten_bytes(tmp_path):
  path = tmp_path / "one.bin"
  path.write_bytes(_one_record(bytes([7])))
  image, label = _parse(str(path), CIFAR10, "fine")
  assert image.dtype == tf.uint8 and image.shape == (32, 32, 3)
  assert label.dtype == tf.int32 and int(label) == 7
  image = image.numpy()
  for y, x, c in [(0, 0, 0), (5, 9, 1), (31, 31, 2), (12, 3, 2)]:
    assert image[y, x, c] == (c * 7 + y * 3 + x) % 256


@pytest.mark.parametrize("kind, want", [("coarse", 3), ("fine", 42)])
def test_cifar100_label_bytes_coarse_then_fine(tmp_path, kind, want):
  path = tmp_path / "one.bin"
  path.write_bytes(_one_record(bytes([3, 42])))
  image, label = _parse(str(path), cifar.CIFAR100, kind)
  assert int(label) == want and image.numpy()[1, 2, 0] == 5


def test_counts_come_from_file_sizes(tmp_path):
  folder = fake.write_cifar10(str(tmp_path), train_per_file=3, test=7, easy=False)
  train = [os.path.join(folder, f) for f in CIFAR10.train_files]
  assert cifar_binary.count_records(train, CIFAR10) == [3] * 5
  test = [os.path.join(folder, "test_batch.bin")]
  assert cifar_binary.count_records(test, CIFAR10) == [7]


def test_truncated_file_is_named(tmp_path):
  path = tmp_path / "data_batch_1.bin"
  path.write_bytes(_one_record(b"\x01") + b"\x00" * 100)
  with pytest.raises(DataError) as err:
    cifar_binary.count_records([str(path)], CIFAR10)
  assert "data_batch_1.bin" in str(err.value) and "3073" in str(err.value)


def test_cifar100_records_in_cifar10_layout_are_recognised(tmp_path):
  path = tmp_path / "data_batch_1.bin"
  path.write_bytes(_one_record(b"\x01\x02") * 2)  # Two 3074-byte records.
  with pytest.raises(DataError) as err:
    cifar_binary.count_records([str(path)], CIFAR10)
  assert "data.name=cifar100" in str(err.value)


def test_label_outside_classes_is_named(tmp_path):
  path = tmp_path / "test_batch.bin"
  path.write_bytes(_one_record(b"\x02") + _one_record(b"\x0c"))
  with pytest.raises(DataError) as err:
    cifar_binary.check_labels([str(path)], CIFAR10, "fine")
  message = str(err.value)
  assert "test_batch.bin" in message and "record 1" in message and "12" in message


def test_locate_points_at_the_other_dataset(tmp_path):
  fake.write_cifar100(str(tmp_path), train=4, test=2, easy=False)
  with pytest.raises(DataError) as err:
    cifar_binary.locate(str(tmp_path), CIFAR10, download=False)
  assert "cifar100" in str(err.value) and "data.name=cifar100" in str(err.value)


def test_label_names_from_meta(tmp_path):
  folder = fake.write_cifar10(str(tmp_path), 1, 1, easy=False)
  names = cifar_binary.read_label_names(folder, CIFAR10, "fine")
  assert names[0] == "airplane" and names[9] == "truck" and len(names) == 10


def test_record_dataset_reads_every_file_in_order_across_chunks(tmp_path, monkeypatch):
  monkeypatch.setattr(cifar_binary, "PARSE_CHUNK", 2)  # Chunks of 2, a short last one.
  paths, labels = [], [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
  for i, file_labels in enumerate(labels):
    path = tmp_path / f"data_batch_{i}.bin"
    path.write_bytes(b"".join(_one_record(bytes([label])) for label in file_labels))
    paths.append(str(path))
  counts = cifar_binary.count_records(paths, CIFAR10)
  assert counts == [3, 1, 5]
  records = list(cifar_binary.record_dataset(paths, counts,
                                             cifar_binary.reader(CIFAR10, "fine")))
  assert [int(label) for _, label in records] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
  assert all(image.numpy()[31, 31, 2] == (2 * 7 + 31 * 3 + 31) % 256
             for image, _ in records)


def test_record_dataset_names_a_file_shorter_than_its_count(tmp_path):
  path = tmp_path / "test_batch.bin"
  path.write_bytes(_one_record(b"\x01") * 2)  # Counted 3 at start, holds 2 now.
  with pytest.raises(tf.errors.InvalidArgumentError) as err:
    list(cifar_binary.record_dataset([str(path)], [3], cifar_binary.reader(CIFAR10, "fine")))
  error = cifar_binary.shrunk_file_error(err.value)
  assert error is not None and "test_batch.bin" in str(error)
  assert cifar_binary.SHRUNK in str(error)
