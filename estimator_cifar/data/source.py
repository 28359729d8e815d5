"""DataSource: what the input pipeline and the model_fn know about a dataset."""

import dataclasses
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
  import tensorflow as tf


@dataclasses.dataclass
class DataSource:
  """What the input pipeline and model_fn need to know about a dataset.

  `records(split)` returns a tf.data.Dataset of (uint8 [32, 32, 3], int32
  label) for split 'train' or 'test'.
  """
  name: str
  num_classes: int
  num_train: int
  num_eval: int
  label_names: list[str]
  records: Callable[[str], "tf.data.Dataset"]
