"""DataSource: what the input pipeline and the model_fn know about a dataset."""

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

from estimator_cifar.errors import DataError

if TYPE_CHECKING:
  import numpy as np
  import tensorflow as tf

# The splits a DataSource reads. Validation images are held out of the
# training images (data/validation_split.py); every source has train and test.
TRAIN = "train"
VALIDATION = "validation"
TEST = "test"
EVAL_SPLITS = (VALIDATION, TEST)


@dataclasses.dataclass
class DataSource:
  """What the input pipeline and model_fn need to know about a dataset.

  `records(split)` returns a tf.data.Dataset of (uint8 `image_shape`, int32
  label) for split 'train', 'validation' (when num_validation > 0) or 'test';
  the train split then excludes the validation images, and `num_train`
  counts what it keeps.
  """
  name: str
  num_classes: int
  num_train: int
  num_eval: int  # The test split's images.
  label_names: list[str]
  records: Callable[[str], "tf.data.Dataset"]
  image_shape: tuple[int, int, int]  # The dataset spec's (data/cifar.py).
  # Sources read from files (the binary layouts): each split's files, the
  # records in each (counted once at start), and `read_records(path, first,
  # count)` -> (uint8 images [count, *image_shape], int32 labels [count]) of a
  # file's records `first` onwards, for the streaming pipeline
  # (data/streaming.py). Other sources stream `records`.
  files: dict[str, list[str]] = dataclasses.field(default_factory=dict)
  file_records: dict[str, list[int]] = dataclasses.field(default_factory=dict)
  read_records: Callable[[Any, Any, Any], tuple] | None = None
  # `read_labels(split)` -> int labels [records] in record order, where a
  # source has them without decoding images; else None (validation_split.py
  # then reads `records`).
  read_labels: Callable[[str], "np.ndarray"] | None = None
  # The validation split's size and how it was chosen (validation_split.py's
  # `apply`, recorded in the model_dir by rundir/data_split.py).
  num_validation: int = 0
  split_info: dict | None = None

  def __post_init__(self):
    # A replaced source (dataclasses.replace) wraps the reader underneath
    # again, checked against its own num_validation.
    read = self.records.read if isinstance(self.records, _SplitCheck) else self.records
    self.records = _SplitCheck(read, self.num_validation > 0)


@dataclasses.dataclass
class _SplitCheck:
  """`records` that refuses a split the source does not have."""
  read: Callable[[str], "tf.data.Dataset"]
  has_validation: bool

  def __call__(self, split: str) -> "tf.data.Dataset":
    if split == VALIDATION and not self.has_validation:
      raise DataError(
          "The data has no validation split: data.validation_size is 0. Hold "
          "out training images with --params_override=data.validation_size=N "
          "(N images, chosen by class), or evaluate on the test split.")
    if split not in (TRAIN, *EVAL_SPLITS):
      raise ValueError(f"Unknown split {split!r}: not one of {TRAIN}, "
                       f"{', '.join(EVAL_SPLITS)}.")
    return self.read(split)
