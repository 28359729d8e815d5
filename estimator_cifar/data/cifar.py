"""The datasets this package knows, one spec each: every fact about a dataset.

Image shape, classes, label names, the binary record layout, the published
files, archive and checksums, and the tensorflow-datasets name. The readers
(cifar_binary.py, tfds_source.py, folder_source.py), the downloader, the
fake-data writer, the config checks, the exporter and the run-identity check
all ask `DATASETS[name]`, as tfds' code asks a DatasetInfo. TF-free, so
config validation can ask it too.
"""

import dataclasses

SIDE = 32  # CIFAR's side; every dataset here has it (folders are resized to it).


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """One dataset: its images, classes, published files and other homes."""
  name: str
  num_classes: dict[str, int]       # label kind -> number of classes.
  side: int = SIDE                  # Images are uint8 [side, side, channels].
  channels: int = 3
  label_names: dict[str, tuple[str, ...]] = dataclasses.field(
      default_factory=dict)         # label kind -> names, where known here.
  tfds_name: str = ""               # "" when tensorflow-datasets lacks it.
  tfds_label_feature: dict[str, str] = dataclasses.field(default_factory=dict)
  # The published binary files; empty for a generated dataset.
  folder: str = ""                  # What the archive extracts to.
  train_files: tuple[str, ...] = ()
  test_files: tuple[str, ...] = ()
  label_bytes: int = 0
  label_offset: dict[str, int] = dataclasses.field(default_factory=dict)
  label_names_file: dict[str, str] = dataclasses.field(default_factory=dict)
  archive: str = ""
  url: str = ""
  sha256: str = ""
  md5: str = ""
  size: int = 0                     # Of the archive, in bytes.

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return (self.side, self.side, self.channels)

  @property
  def image_bytes(self) -> int:
    return self.side * self.side * self.channels

  @property
  def record_bytes(self) -> int:
    """One binary record: the label bytes, then the channel-major image."""
    return self.label_bytes + self.image_bytes

  @property
  def files(self) -> tuple[str, ...]:
    """Every file the extracted folder holds."""
    names = tuple(dict.fromkeys(self.label_names_file.values()))
    return self.train_files + self.test_files + names

  def label_kind(self, requested: str) -> str:
    """`data.label` where the dataset has it; else its only kind, "fine"."""
    return requested if requested in self.num_classes else "fine"


# sha256 and size: tensorflow_datasets url_checksums/cifar10.txt (and
# image_classification/cifar10/checksums.tsv in tfds 4.9.10). md5: the dataset
# page https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 binary version").
CIFAR10 = DatasetSpec(
    name="cifar10", num_classes={"fine": 10},
    label_names={"fine": tuple("airplane automobile bird cat deer dog frog "
                               "horse ship truck".split())},
    tfds_name="cifar10", tfds_label_feature={"fine": "label"},
    folder="cifar-10-batches-bin",
    train_files=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    test_files=("test_batch.bin",), label_bytes=1, label_offset={"fine": 0},
    label_names_file={"fine": "batches.meta.txt"},
    archive="cifar-10-binary.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    md5="c32a1d4ab5d03f1284b67883e8d87530",
    size=170052171)

# CIFAR-100 records carry the coarse label byte first, then the fine one.
# sha256 and size: tensorflow_datasets url_checksums/cifar100.txt (and
# image_classification/cifar100/checksums.tsv in tfds 4.9.10). md5: the dataset
# page above, as copied into several loaders (e.g. a `_cifar100_md5` constant).
CIFAR100 = DatasetSpec(
    name="cifar100", num_classes={"coarse": 20, "fine": 100},
    tfds_name="cifar100",
    tfds_label_feature={"fine": "label", "coarse": "coarse_label"},
    folder="cifar-100-binary",
    train_files=("train.bin",), test_files=("test.bin",), label_bytes=2,
    label_offset={"coarse": 0, "fine": 1},
    label_names_file={"coarse": "coarse_label_names.txt",
                      "fine": "fine_label_names.txt"},
    archive="cifar-100-binary.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    sha256="58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
    md5="03b5dce01913d631647c71ecec9e9cb8",
    size=168513733)

# Random images of CIFAR-10's shape and classes, generated: no files.
SYNTHETIC = DatasetSpec(name="synthetic", num_classes={"fine": 10})

DATASETS = {spec.name: spec for spec in (CIFAR10, CIFAR100, SYNTHETIC)}
# Those published as binary archives: what can be downloaded and faked.
PUBLISHED = tuple(name for name, spec in DATASETS.items() if spec.url)


def label_kinds(name: str) -> tuple[str, ...]:
  """The label kinds of dataset `name` (just "fine" for a name not known here)."""
  spec = DATASETS.get(name) if isinstance(name, str) else None
  return tuple(spec.num_classes) if spec else ("fine",)
