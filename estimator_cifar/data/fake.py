"""Writes small datasets in the real CIFAR binary layouts, for tests and tools.

`easy=True` gives a learnable task (each class a stripe orientation/frequency
and a colour tint, plus noise) that survives crop, flip and per-image
standardization, so a short run must reach high accuracy; `easy=False` gives
uniform noise, for checks of plumbing only.
"""

import os

import numpy as np

from estimator_cifar.data import cifar

LABEL_NAMES_10 = cifar.CIFAR10.label_names["fine"]  # What write_cifar10 writes.

def make_images(labels: np.ndarray, num_classes: int, easy: bool,
                rng: np.random.Generator) -> np.ndarray:
  """uint8 images [N, 32, 32, 3] (HWC, CIFAR's shape) for `labels`."""
  n, side = len(labels), cifar.SIDE
  if not easy:
    return rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
  # Class c: stripes along axis (c % 2) at 1 + (c // 2) % 5 periods per 16 px,
  # random phase, a tint from c; with more than 10 classes, group c // 10 also
  # places a dark 8x8 square in one of 10 cells of a 3x4 grid.
  yy, xx = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
  tints = np.random.default_rng(1234).uniform(0.3, 1.0, (num_classes, 3))
  images = np.empty((n, side, side, 3), np.float32)
  for i, c in enumerate(labels):
    pattern = c % 10
    coord = yy if pattern % 2 == 0 else xx
    freq = 1 + (pattern // 2) % 5
    wave = np.sin(2 * np.pi * freq * coord / 16.0 + rng.uniform(0, 2 * np.pi))
    images[i] = 128 + 80 * wave[..., None] * tints[c][None, None, :]
    if num_classes > 10:
      group = c // 10
      top, left = (group // 4) * 11 + 1, (group % 4) * 8
      images[i, top:top + 8, left:left + 8] = 0
  images += rng.normal(0, 20, images.shape)
  return np.clip(images, 0, 255).astype(np.uint8)


def _records(label_columns: list[np.ndarray], images: np.ndarray) -> np.ndarray:
  chw = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
  cols = [c.astype(np.uint8)[:, None] for c in label_columns]
  return np.concatenate(cols + [chw], axis=1)


def _write_records(data_dir: str, layout: cifar.DatasetSpec, sizes: list[int],
                   easy: bool, seed: int) -> str:
  """Writes `sizes[i]` records into the i-th train/test file; returns the folder."""
  folder = os.path.join(data_dir, layout.folder)
  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng(seed)
  classes = layout.num_classes["fine"]
  for name, n in zip(layout.train_files + layout.test_files, sizes):
    fine = rng.integers(0, classes, n)
    # CIFAR-100 records start with the coarse label: 5 fine classes to each.
    columns = [fine // 5, fine] if layout.label_bytes == 2 else [fine]
    _records(columns, make_images(fine, classes, easy, rng)).tofile(
        os.path.join(folder, name))
  return folder


def write_cifar10(data_dir: str, train_per_file: int = 40, test: int = 50,
                  easy: bool = True, seed: int = 0) -> str:
  """Writes <data_dir>/cifar-10-batches-bin/ (5 train files + test); returns it."""
  layout = cifar.CIFAR10
  folder = _write_records(
      data_dir, layout, [train_per_file] * len(layout.train_files) + [test],
      easy, seed)
  with open(os.path.join(folder, layout.label_names_file["fine"]), "w") as f:
    f.write("\n".join(layout.label_names["fine"]) + "\n\n")
  return folder


def write_cifar100(data_dir: str, train: int = 200, test: int = 50,
                   easy: bool = True, seed: int = 0) -> str:
  """Writes <data_dir>/cifar-100-binary/ (coarse byte, fine byte, image)."""
  layout = cifar.CIFAR100
  folder = _write_records(data_dir, layout, [train, test], easy, seed)
  for kind, count in layout.num_classes.items():
    with open(os.path.join(folder, layout.label_names_file[kind]), "w") as f:
      f.write("\n".join(f"{kind}_{i}" for i in range(count)) + "\n")
  return folder
