"""Writes small datasets in the real CIFAR binary layouts, for tests and tools.

`easy=True` gives a learnable task (each class a stripe orientation/frequency
and a colour tint, plus noise) that survives crop, flip and per-image
standardization, so a short run must reach high accuracy; `easy=False` gives
uniform noise, for checks of plumbing only.
"""

import os

import numpy as np

from estimator_cifar.data import cifar_binary

LABEL_NAMES_10 = ("airplane automobile bird cat deer dog frog horse ship "
                  "truck").split()


def make_images(labels: np.ndarray, num_classes: int, easy: bool,
                rng: np.random.Generator) -> np.ndarray:
  """uint8 images [N, 32, 32, 3] (HWC) for `labels`."""
  n = len(labels)
  if not easy:
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
  # Class c: stripes along axis (c % 2) at 1 + (c // 2) % 5 periods per 16 px,
  # random phase, a tint from c; with more than 10 classes, group c // 10 also
  # places a dark 8x8 square in one of 10 cells of a 3x4 grid.
  yy, xx = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
  tints = np.random.default_rng(1234).uniform(0.3, 1.0, (num_classes, 3))
  images = np.empty((n, 32, 32, 3), np.float32)
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


def write_cifar10(data_dir: str, train_per_file: int = 40, test: int = 50,
                  easy: bool = True, seed: int = 0) -> str:
  """Writes <data_dir>/cifar-10-batches-bin/ (5 train files + test); returns it."""
  layout = cifar_binary.CIFAR10
  folder = os.path.join(data_dir, layout.folder)
  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng(seed)
  sizes = [train_per_file] * len(layout.train_files) + [test]
  for name, n in zip(layout.train_files + layout.test_files, sizes):
    labels = rng.integers(0, 10, n)
    _records([labels], make_images(labels, 10, easy, rng)).tofile(
        os.path.join(folder, name))
  with open(os.path.join(folder, "batches.meta.txt"), "w") as f:
    f.write("\n".join(LABEL_NAMES_10) + "\n\n")
  return folder


def write_cifar100(data_dir: str, train: int = 200, test: int = 50,
                   easy: bool = True, seed: int = 0) -> str:
  """Writes <data_dir>/cifar-100-binary/ (coarse byte, fine byte, image)."""
  layout = cifar_binary.CIFAR100
  folder = os.path.join(data_dir, layout.folder)
  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng(seed)
  for name, n in (("train.bin", train), ("test.bin", test)):
    fine = rng.integers(0, 100, n)
    coarse = fine // 5
    _records([coarse, fine], make_images(fine, 100, easy, rng)).tofile(
        os.path.join(folder, name))
  for kind, count in (("coarse", 20), ("fine", 100)):
    with open(os.path.join(folder, f"{kind}_label_names.txt"), "w") as f:
      f.write("\n".join(f"{kind}_{i}" for i in range(count)) + "\n")
  return folder
