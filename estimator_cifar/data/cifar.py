"""The CIFAR datasets as published: folders, files, record layout, archives.

One spec per dataset, read by the binary reader (cifar_binary.py), the
downloader (download.py), the fake-data writer (fake.py) and the tools.
"""

import dataclasses

HEIGHT = 32
WIDTH = 32
DEPTH = 3
IMAGE_BYTES = HEIGHT * WIDTH * DEPTH


@dataclasses.dataclass(frozen=True)
class CifarSpec:
  """Where a dataset's files live, how its records are laid out, its archive."""
  name: str
  folder: str                       # What the archive extracts to.
  train_files: tuple[str, ...]
  test_files: tuple[str, ...]
  label_bytes: int
  label_offset: dict[str, int]      # label kind -> byte offset in the record.
  num_classes: dict[str, int]       # label kind -> number of classes.
  label_names_file: dict[str, str]  # label kind -> file of names, one a line.
  archive: str
  url: str
  sha256: str
  md5: str
  size: int                         # Of the archive, in bytes.

  @property
  def record_bytes(self) -> int:
    return self.label_bytes + IMAGE_BYTES

  @property
  def files(self) -> tuple[str, ...]:
    """Every file the extracted folder holds."""
    names = tuple(dict.fromkeys(self.label_names_file.values()))
    return self.train_files + self.test_files + names


# sha256 and size: tensorflow_datasets url_checksums/cifar10.txt (and
# image_classification/cifar10/checksums.tsv in tfds 4.9.10). md5: the dataset
# page https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 binary version").
CIFAR10 = CifarSpec(
    name="cifar10", folder="cifar-10-batches-bin",
    train_files=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    test_files=("test_batch.bin",), label_bytes=1,
    label_offset={"fine": 0}, num_classes={"fine": 10},
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
CIFAR100 = CifarSpec(
    name="cifar100", folder="cifar-100-binary",
    train_files=("train.bin",), test_files=("test.bin",), label_bytes=2,
    label_offset={"coarse": 0, "fine": 1},
    num_classes={"coarse": 20, "fine": 100},
    label_names_file={"coarse": "coarse_label_names.txt",
                      "fine": "fine_label_names.txt"},
    archive="cifar-100-binary.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    sha256="58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
    md5="03b5dce01913d631647c71ecec9e9cb8",
    size=168513733)

DATASETS = {"cifar10": CIFAR10, "cifar100": CIFAR100}
