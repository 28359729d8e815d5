"""CIFAR-10/100 in the original binary layout: find, check and read the records.

Each record is `label_bytes` label bytes followed by a uint8 image in
channel-major order, as the dataset's spec (data/cifar.py) lays it out.
Record counts come from the file sizes, never from the published
50,000/10,000, so a user's subset or another dataset in this layout works.
Sizes and label bytes are checked once at start-up with numpy (cheap: one pass
over the label bytes), so nothing in the per-step path checks them.
"""

import functools
import os
import re

import numpy as np

from estimator_cifar.data import cifar
from estimator_cifar.data.cifar import DatasetSpec
from estimator_cifar.errors import DataError

PARSE_CHUNK = 1000  # Records read together (file_chunks).
# read_records' complaint about a file that lost records mid-run, and the
# pattern that finds it again where TensorFlow re-raises it from the input
# pipeline (shrunk_file_error).
SHRUNK = "has shrunk to fewer than"
_SHRUNK_LINE = re.compile(rf"ValueError: (.*? {SHRUNK} \d+ records.*)")

def locate(data_dir: str, layout: DatasetSpec, download: bool = True) -> str:
  """Returns the folder holding `layout`'s files, extracting or downloading.

  Raises:
    DataError: data_dir is not usable, or holds the other CIFAR's files only,
      or the data cannot be extracted or downloaded.
  """
  if os.path.exists(data_dir) and not os.path.isdir(data_dir):
    raise DataError(f"--data_dir={data_dir} is a file, not a directory. Pass "
                    f"the folder that holds {layout.folder}/ (or an empty "
                    "folder to download the data into).")
  if os.path.isdir(data_dir) and not os.access(data_dir, os.R_OK | os.X_OK):
    raise DataError(f"Cannot read --data_dir={data_dir} (permission denied). "
                    "Fix its permissions or pass another --data_dir.")
  folder = os.path.join(data_dir, layout.folder)
  if _has_files(folder, layout):
    return folder
  if os.path.basename(os.path.normpath(data_dir)) == layout.folder and \
      _has_files(data_dir, layout):
    return data_dir  # --data_dir named the extracted folder itself.
  for other in _others(layout):
    if _has_files(os.path.join(data_dir, other.folder), other):
      raise DataError(
          f"{data_dir} holds {other.name} files ({other.folder}/) but the "
          f"experiment asks for {layout.name} ({layout.folder}/). Pass "
          f"--params_override=data.name={other.name} to train on them, or "
          f"point --data_dir at a folder with {layout.folder}/.")
  if not download:
    raise DataError(f"No {layout.name} data under {data_dir}: expected "
                    f"{folder}/ with {', '.join(layout.train_files + layout.test_files)}.")
  from estimator_cifar.data import download as download_lib
  return download_lib.ensure_dataset(data_dir, layout.name)


def _others(layout: DatasetSpec) -> list[DatasetSpec]:
  """The other published datasets, which a user's files may really be."""
  return [cifar.DATASETS[name] for name in cifar.PUBLISHED if name != layout.name]


def _has_files(folder: str, layout: DatasetSpec) -> bool:
  return all(os.path.isfile(os.path.join(folder, f))
             for f in layout.train_files + layout.test_files)


def count_records(paths: list[str], layout: DatasetSpec) -> list[int]:
  """The records in each file, from the file sizes.

  Raises:
    DataError: a file that is not readable, or whose size is not a whole
      number of records (names the file and, when it fits the other CIFAR's
      record size, says so), or no records at all.
  """
  counts = []
  for path in paths:
    if not os.access(path, os.R_OK):
      raise DataError(f"Cannot read {path} (permission denied). Fix its "
                      "permissions or pass another --data_dir.")
    size = os.path.getsize(path)
    if size % layout.record_bytes:
      hint = ""
      for other in _others(layout):
        if size % other.record_bytes == 0:
          hint = (f" Its size fits {other.name} records ({other.record_bytes} "
                  f"bytes): pass --params_override=data.name={other.name}.")
      raise DataError(
          f"{path} is {size} bytes, not a whole number of {layout.name} "
          f"records of {layout.record_bytes} bytes: the file is truncated or "
          f"of another dataset.{hint} Re-extract or re-download it (delete the "
          "folder and the run downloads it again).")
    counts.append(size // layout.record_bytes)
  if not sum(counts):
    raise DataError(f"No records in {', '.join(paths)}: the files are empty. "
                    "Re-extract or re-download the dataset.")
  return counts


def check_labels(paths: list[str], layout: DatasetSpec, kind: str) -> None:
  """Reads the label bytes once and refuses any outside the dataset's classes.

  Raises:
    DataError: names the file, the record and the bad label.
  """
  classes = layout.num_classes[kind]
  for path in paths:
    labels = read_labels(path, layout, kind)
    bad = np.flatnonzero(labels >= classes)
    if bad.size:
      raise DataError(
          f"{path}: record {bad[0]} has label {labels[bad[0]]}, outside the "
          f"{classes} {kind} classes of {layout.name} ({bad.size} such records). "
          f"The file is corrupt or of another dataset; re-extract or "
          "re-download it, or pick the matching data.name.")


def read_labels(path: str, layout: DatasetSpec, kind: str) -> np.ndarray:
  """The file's labels of `kind`, uint8 [records], without reading the images."""
  records = np.memmap(path, dtype=np.uint8, mode="r").reshape(
      -1, layout.record_bytes)
  return np.asarray(records[:, layout.label_offset[kind]])


def read_label_names(folder: str, layout: DatasetSpec, kind: str) -> list[str]:
  """Class names from the dataset's names file; else the spec's, else numbers."""
  path = os.path.join(folder, layout.label_names_file[kind])
  names = []
  if os.path.isfile(path):
    with open(path) as f:
      names = [line.strip() for line in f if line.strip()]
  classes = layout.num_classes[kind]
  if len(names) >= classes:
    return names[:classes]
  return list(layout.label_names.get(kind) or map(str, range(classes)))


def reader(layout: DatasetSpec, kind: str):
  """read_records for one layout and label kind: read(path, first, count)."""
  return functools.partial(read_records, layout=layout, kind=kind)


def file_dataset(paths: list[str], counts: list[int]):
  """A tf.data.Dataset of (path, record count), one element per file."""
  import tensorflow as tf  # Deferred: config errors must not wait for TF.
  return tf.data.Dataset.from_tensor_slices(
      (tf.constant(paths), tf.constant(counts, tf.int64)))


def record_dataset(paths: list[str], counts: list[int], read):
  """A tf.data.Dataset of (uint8 image [side, side, 3], int32 label) records of
  the files `paths`, in order, holding `counts` records (count_records),
  each chunk read by `read` (reader's)."""
  return file_dataset(paths, counts).flat_map(
      lambda path, count: file_chunks(read, path, count)).unbatch()


def file_chunks(read, path, count):
  """The `count` records of the file `path` as a tf.data.Dataset of chunks of
  up to PARSE_CHUNK, each `read(path, first, count)` -> (images, labels).

  A chunk at a time: one record at a time pays an op dispatch per record.
  Sequential: streaming reads files in parallel, and a parallel map here
  would hold more chunks of each file in memory.
  """
  import tensorflow as tf
  firsts = tf.data.Dataset.range(0, count, PARSE_CHUNK)
  return firsts.map(lambda first: read(path, first,
                                       tf.minimum(count - first, PARSE_CHUNK)))


def read_records(path, first, count, layout: DatasetSpec, kind: str):
  """Records `first` to `first + count` of the file `path` -> (images, labels).

  One numpy read straight into an array and one channel move per call: a
  FixedLengthRecordDataset read and decode_raw copied each record twice more
  on its way. Images are uint8 [count, side, side, channels], labels int32 [count].
  """
  import tensorflow as tf

  def read(path, first, count):
    # Bytes in a tf.data graph, a 0-d array when called eagerly.
    path, first, count = os.fsdecode(np.asarray(path).item()), int(first), int(count)
    records = np.fromfile(path, np.uint8, count * layout.record_bytes,
                          offset=first * layout.record_bytes)
    if records.size != count * layout.record_bytes:
      raise ValueError(f"{path} {SHRUNK} {first + count} "
                       "records since the run counted them at its start. "
                       "Restore the file, then run the same command again: "
                       "it continues from the latest checkpoint.")
    records = records.reshape(count, layout.record_bytes)
    return (channels_last(records, layout),
            records[:, layout.label_offset[kind]].astype(np.int32))

  images, labels = tf.numpy_function(read, [path, first, count],
                                     [tf.uint8, tf.int32], stateful=False)
  return tf.reshape(images, [-1, *layout.image_shape]), tf.reshape(labels, [-1])


def shrunk_file_error(exc: BaseException) -> DataError | None:
  """read_records' message about a shrunk file as a DataError, if `exc`
  (raised from a session.run, however deep) carries it."""
  match = _SHRUNK_LINE.search(str(exc))
  return DataError(match.group(1)) if match else None


def channels_last(records: np.ndarray, layout: DatasetSpec) -> np.ndarray:
  """uint8 records [N, record_bytes] (channel-major images after the label
  bytes) -> the images [N, side * side, channels], one strided copy per channel.

  Streaming pays this every epoch: numpy's per-channel strided copies took
  1.7 us a record where tf.transpose's byte shuffle took 4.5.
  """
  pixels, channels = layout.side * layout.side, layout.channels
  planes = records[:, layout.label_bytes:].reshape(len(records), channels, pixels)
  images = np.empty((len(records), pixels, channels), np.uint8)
  for channel in range(channels):
    images[:, :, channel] = planes[:, channel]
  return images
