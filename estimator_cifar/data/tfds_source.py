"""`data.source=tfds`: CIFAR-10/100 through tensorflow-datasets, never downloading.

tfds keeps each dataset as TFRecord shards plus a `dataset_info.json` under
`<tfds_dir>/<name>/<version>/`. The split sizes and label names come from that
info (what `tfds build` recorded), so nothing is counted at start-up. A run
never downloads: a dataset that is not prepared is a DataError that says how
to prepare it, once, on a machine with network access.
"""

from estimator_cifar import paths
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import cifar
from estimator_cifar.data.source import DataSource
from estimator_cifar.errors import DataError

SPLITS = {"train": "train", "test": "test"}


def get_source(cfg: ExperimentConfig) -> DataSource:
  """The DataSource for tfds `cifar10`/`cifar100` in `data.tfds_dir`.

  An empty `data.tfds_dir` means tfds' default ($TFDS_DATA_DIR or
  ~/tensorflow_datasets).

  Raises:
    DataError: tensorflow-datasets is not importable, or the dataset is not
      prepared in that folder (the message gives the commands that prepare it).
  """
  try:
    import tensorflow_datasets as tfds  # Deferred: slow, and optional.
  except ImportError as e:
    raise DataError(
        f"data.source=tfds needs the tensorflow-datasets package, which does "
        f"not import here ({e}). Install the pinned one (`make .venv`, or pip "
        "install tensorflow-datasets==4.9.10 tensorflow-metadata==1.16.1), or "
        "use --params_override=data.source=binary.") from None
  data = cfg.data
  spec = cifar.DATASETS[data.name]
  name = spec.tfds_name
  tfds_dir = paths.expand(data.tfds_dir)
  builder = tfds.builder(name, data_dir=tfds_dir or None)
  # Look for the info file first: is_prepared() alone logs a warning on an
  # absent folder, before the error below says the same more usefully.
  info_file = builder.data_path / "dataset_info.json"
  if not info_file.exists() or not builder.is_prepared():
    folder = tfds_dir or "~/tensorflow_datasets"
    raise DataError(
        f"data.source=tfds: {name} is not prepared under {folder} "
        f"(no {info_file}), and runs never download. "
        f"Prepare it once with network access: `tfds build {name} "
        f"--data_dir={folder}` (or in Python: tfds.builder('{name}', "
        f"data_dir='{folder}').download_and_prepare()), then set "
        "data.tfds_dir to that folder. Or use the binary files instead: "
        "--params_override=data.source=binary (fetched by "
        "python -m tools.download_cifar or on first run).")
  feature = spec.tfds_label_feature[spec.label_kind(data.label)]
  label_info = builder.info.features[feature]
  sizes = {split: builder.info.splits[tfds_split].num_examples
           for split, tfds_split in SPLITS.items()}

  def records(split: str):
    import tensorflow as tf
    ds = builder.as_dataset(split=SPLITS[split], shuffle_files=False)
    return ds.map(lambda ex: (ex["image"], tf.cast(ex[feature], tf.int32)),
                  num_parallel_calls=tf.data.AUTOTUNE)

  return DataSource(
      name=data.name, num_classes=label_info.num_classes,
      num_train=sizes["train"], num_eval=sizes["test"],
      label_names=list(label_info.names), records=records,
      image_shape=spec.image_shape)
