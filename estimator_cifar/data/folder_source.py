"""`data.source=folder`: images in class folders, read as Keras'
`image_dataset_from_directory` reads them.

    <data_dir>/train/<class>/<image>    <data_dir>/test/<class>/<image>

The classes are the sorted names of train/'s subfolders, label i the i-th
(and the run's label_names.txt); test/ may lack a class but not add one. In
each class folder the regular files ending in .png, .jpg or .jpeg are read,
in name order; anything else (links, subfolders, other files) is skipped.
Each image's header is read at start-up (`image_files.check_image`), so a
file that is not a PNG or JPEG, or would decode to more pixels than
`image_files.max_pixels()`, fails at once with its name. Then every image
is decoded once, to RGB resized to the dataset spec's side (data.name's,
32 for the CIFARs) by the exporter's `decode_images`, so training sees
what serving the model will see; a file that does not decode (truncated,
corrupt) fails there, named, not mid-run.
Memory: the decoded splits, side x side x 3 bytes an image.
"""

import os

import numpy as np

from estimator_cifar.data import image_files
from estimator_cifar.data.cifar import DatasetSpec
from estimator_cifar.data.source import DataSource
from estimator_cifar.errors import DataError

SPLIT_FOLDERS = {"train": "train", "test": "test"}
DECODE_CHUNK = 64  # Images decoded together.


def get_source(spec: DatasetSpec, data_dir: str) -> DataSource:
  """The DataSource of the class folders under `data_dir`.

  Raises:
    DataError: no train/ folder or no class folder in it, a test class that
      train/ lacks, a split without images, or an image that is not a PNG or
      JPEG, is too large to decode (`image_files.check_image`) or does not
      decode.
  """
  train_dir = os.path.join(data_dir, SPLIT_FOLDERS["train"])
  classes = [e.name for e in _entries(train_dir, missing_ok=True)
             if e.is_dir(follow_symlinks=False)]
  if not classes:
    raise DataError(
        f"data.source=folder: no class folders in {train_dir}/. Put the "
        "training images in <data_dir>/train/<class>/*.png (or .jpg) and the "
        "test images in <data_dir>/test/<class>/*, then pass that folder as "
        "--data_dir.")
  decoded = {}
  for split, folder in SPLIT_FOLDERS.items():
    paths, labels = list_images(os.path.join(data_dir, folder), classes)
    decoded[split] = decode(paths), np.array(labels, np.int32)

  def records(split: str):
    import tensorflow as tf
    images, labels = decoded[split]

    def read(first, count):  # Slices of the arrays, not graph constants.
      first, count = int(first), int(count)
      return images[first:first + count], labels[first:first + count]

    def chunk(first):
      count = tf.minimum(len(labels) - first, DECODE_CHUNK)
      part = tf.numpy_function(read, [first, count], [tf.uint8, tf.int32],
                               stateful=False)
      return tf.reshape(part[0], [-1, *spec.image_shape]), tf.reshape(part[1], [-1])

    return tf.data.Dataset.range(0, len(labels), DECODE_CHUNK).map(chunk).unbatch()

  return DataSource(
      name=spec.name, num_classes=len(classes),
      num_train=len(decoded["train"][1]), num_eval=len(decoded["test"][1]),
      label_names=classes, records=records, image_shape=spec.image_shape,
      read_labels=lambda split: decoded[split][1])


def list_images(split_dir: str, classes: list[str]) -> tuple[list[str], list[int]]:
  """The split's image paths and labels, each image checked
  (`image_files.check_image`).

  Raises:
    DataError: see get_source.
  """
  paths, labels = [], []
  for entry in _entries(split_dir):
    if entry.is_dir(follow_symlinks=False) and entry.name not in classes:
      raise DataError(
          f"data.source=folder: {entry.path}/ is a class that "
          f"{os.path.dirname(split_dir)}/train/ lacks (its classes: "
          f"{', '.join(classes)}). Add a train/{entry.name}/ folder with its "
          "training images, or move the folder out of the test split.")
  for label, name in enumerate(classes):
    folder = os.path.join(split_dir, name)
    try:
      files = (image_files.folder_images(folder, links=False)
               if os.path.isdir(folder) else [])
    except OSError as e:
      raise _unreadable(folder, e) from None
    for path in files:
      image_files.check_image(path)
    paths.extend(files)
    labels.extend([label] * len(files))
  if not paths:
    raise DataError(
        f"data.source=folder: no {'/'.join(image_files.IMAGE_EXTENSIONS)} images in the "
        f"class folders of {split_dir}/. Put each image in "
        f"{split_dir}/<class>/ (one folder per class).")
  return paths, labels


def decode(paths: list[str]) -> np.ndarray:
  """uint8 [N, side, side, 3]: the image files decoded and resized, a chunk
  at a time.

  Raises:
    DataError: names the first file that does not decode.
  """
  import tensorflow as tf

  # Deferred: the exporter's decode needs TensorFlow, as does the engine.
  from estimator_cifar.engine import export

  chunks = []
  for start in range(0, len(paths), DECODE_CHUNK):
    part = paths[start:start + DECODE_CHUNK]
    try:
      chunks.append(export.decode_encoded(
          tf.constant([_read(path) for path in part], tf.string)).numpy())
    except tf.errors.InvalidArgumentError:
      found = export.undecodable(_read(path) for path in part)
      if found is None:
        raise
      raise DataError(f"{part[found[0]]} does not decode ({found[1]}): the "
                      "file is truncated or corrupt. Replace it, or remove "
                      "it.") from None
  return np.concatenate(chunks)


def _read(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def _entries(folder: str, missing_ok: bool = False) -> list[os.DirEntry]:
  """The folder's entries, by name; a DataError if it is not readable."""
  try:
    with os.scandir(folder) as it:
      return sorted(it, key=lambda e: e.name)
  except FileNotFoundError:
    if missing_ok:
      return []
    raise DataError(
        f"data.source=folder: {folder}/ does not exist. Put the images in "
        "<data_dir>/train/<class>/ and <data_dir>/test/<class>/, then pass "
        "that folder as --data_dir.") from None
  except OSError as e:
    raise _unreadable(folder, e) from None


def _unreadable(folder: str, e: OSError) -> DataError:
  return DataError(f"data.source=folder: cannot read {folder}/ ({e.strerror}). "
                   "Fix its permissions or pass another --data_dir.")

