"""DataSource: what the input pipeline and the model_fn know about a dataset."""

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
  import tensorflow as tf


@dataclasses.dataclass
class DataSource:
  """What the input pipeline and model_fn need to know about a dataset.

  `records(split)` returns a tf.data.Dataset of (uint8 `image_shape`, int32
  label) for split 'train' or 'test'.
  """
  name: str
  num_classes: int
  num_train: int
  num_eval: int
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
