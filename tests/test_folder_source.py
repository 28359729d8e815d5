"""data.source=folder: class folders read as Keras reads them, checked headers,
clear errors, and a real training run from image folders through the CLI."""

import os

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import rundir
from estimator_cifar.data import cifar, folder_source, image_files, sources, streaming
from estimator_cifar.data.input_pipeline import IMAGES_KEY, make_input_fn
from estimator_cifar.errors import DataError
from tests.testutil import (TINY, checkpoint_steps, cli_in_process, error_line,
                            run_cli, tiny_config)


def _write(path, image: np.ndarray, fmt: str = "png", **jpeg_args) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  data = (tf.io.encode_png(image) if fmt == "png"
          else tf.io.encode_jpeg(image, **jpeg_args))
  with open(path, "wb") as f:
    f.write(data.numpy())


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def _records(source, split: str):
  images, labels = zip(*[(i.numpy(), l.numpy()) for i, l in source.records(split)])
  return np.stack(images), np.array(labels)


def test_reads_sorted_class_folders_and_only_regular_image_files(tmp_path):
  exact = _noise(32, 32, seed=1)
  _write(tmp_path / "train/dog/b.png", exact)
  _write(tmp_path / "train/dog/a.JPG", _noise(48, 40), fmt="jpeg")
  _write(tmp_path / "train/cat/x.jpeg", _noise(20, 20), fmt="jpeg")
  _write(tmp_path / "train/bird/y.png", _noise(64, 64))
  _write(tmp_path / "test/cat/t.png", _noise(32, 32, seed=2))
  # Skipped: another kind of file, a link, a nested folder, a fifo.
  (tmp_path / "train/dog/notes.txt").write_text("not an image")
  os.symlink(tmp_path / "train/dog/b.png", tmp_path / "train/dog/link.png")
  _write(tmp_path / "train/dog/nested/z.png", _noise(32, 32))
  os.mkfifo(tmp_path / "train/cat/pipe.png")

  source = folder_source.get_source(cifar.CIFAR10, str(tmp_path))
  assert source.label_names == ["bird", "cat", "dog"]  # Sorted folder names.
  assert (source.num_classes, source.num_train, source.num_eval) == (3, 4, 1)
  images, labels = _records(source, "train")
  assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
  assert list(labels) == [0, 1, 2, 2]  # bird/y, cat/x, dog/a.JPG, dog/b.png.
  np.testing.assert_array_equal(images[3], exact)  # Right size: untouched.
  test_images, test_labels = _records(source, "test")
  assert test_images.shape == (1, 32, 32, 3) and list(test_labels) == [1]


def test_image_size_reads_png_and_jpeg_headers(tmp_path):
  _write(tmp_path / "a.png", _noise(24, 40))
  # XMP metadata puts an APP1 segment before the frame header.
  _write(tmp_path / "b.jpg", _noise(24, 40), fmt="jpeg", xmp_metadata="x" * 500)
  (tmp_path / "c.png").write_bytes(b"GIF89a" + bytes(30))
  assert image_files.encoded_size((tmp_path / "a.png").read_bytes()) == (40, 24)
  assert image_files.encoded_size((tmp_path / "b.jpg").read_bytes()) == (40, 24)
  assert image_files.encoded_size((tmp_path / "c.png").read_bytes()) is None


def _truncate(path) -> None:
  """Its header intact, half its pixel data gone (an interrupted copy)."""
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])


def _huge_png_header(path, width: int, height: int) -> None:
  """A real PNG whose header claims width x height (never decoded)."""
  data = bytearray(tf.io.encode_png(_noise(2, 2)).numpy())
  data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
  path.write_bytes(bytes(data))


@pytest.mark.parametrize("arrange, message", [
    (lambda d: None, r"no class folders in .*/train/.*<data_dir>/train/<class>"),
    (lambda d: _write(d / "test/fish/f.png", _noise(8, 8)),
     r"test/fish/ is a class that .*train/ lacks \(its classes: cat\)"),
    (lambda d: (d / "test/cat/bad.png").write_text("text"),
     r"test/cat/bad.png is not a PNG or JPEG image"),
    (lambda d: _huge_png_header(d / "test/cat/huge.png", 20000, 20000),
     r"huge.png is 20000x20000: 400,000,000 pixels once decoded, over the "
     r"limit of 89,478,485"),
    (lambda d: os.remove(d / "test/cat/t.png"), r"no .* images in the class folders of"),
    (lambda d: _truncate(d / "test/cat/t.png"),
     r"test/cat/t.png does not decode \(Invalid PNG data, size \d+\): the file is "
     "truncated"),
])
def test_bad_folders_are_refused_naming_the_file_and_fix(tmp_path, arrange, message):
  if "no class folders" not in message:
    _write(tmp_path / "train/cat/c.png", _noise(8, 8))
    _write(tmp_path / "test/cat/t.png", _noise(16, 16))
  arrange(tmp_path)
  with pytest.raises(DataError, match=message):
    folder_source.get_source(cifar.CIFAR10, str(tmp_path))


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_the_config_picks_the_folder_source_in_memory_or_streamed(tmp_path, in_memory):
  for i in range(5):
    _write(tmp_path / f"train/{'ab'[i % 2]}/{i}.png", _noise(40, 40, seed=i))
  _write(tmp_path / "test/a/1.png", _noise(32, 32))
  cfg = tiny_config("data.source=folder", f"data.in_memory={in_memory}",
                    "train.batch_size=4")
  source = sources.get_source(cfg, str(tmp_path))
  assert source.label_names == ["a", "b"] and source.image_shape == (32, 32, 3)
  assert streaming.should_stream(cfg, source) == (in_memory == "false")
  for features, labels in make_input_fn(cfg, source, training=True)().take(3):
    assert features[IMAGES_KEY].shape == (4, 32, 32, 3)
    assert set(labels.numpy()) <= {0, 1}


def _class_image(label: int, rng) -> np.ndarray:
  """Class 0 bright, class 1 dark, class 2 red: easy to learn in a few steps."""
  base = [(220, 220, 220), (30, 30, 30), (220, 30, 30)][label]
  size = rng.integers(24, 48)  # Every size: all are resized to 32.
  noise = rng.normal(0, 10, (size, size, 3))
  return np.clip(np.array(base) + noise, 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_cli_trains_and_evaluates_a_tiny_model_from_image_folders(tmp_path):
  data, model_dir = tmp_path / "images", tmp_path / "run"
  rng = np.random.default_rng(0)
  names = ["apple", "coal", "tomato"]
  for split, count in (("train", 16), ("test", 4)):
    for label, name in enumerate(names):
      for i in range(count):
        _write(data / split / name / f"{i}.png", _class_image(label, rng),
               fmt="png" if i % 2 else "jpeg")
  proc = run_cli("--experiment=resnet_sgd", f"--model_dir={model_dir}",
                 f"--data_dir={data}", "--mode=train_and_eval",
                 "--params_override=" + ",".join(TINY + ["data.source=folder"]))
  assert proc.returncode == 0, proc.stderr[-3000:]
  labels = (model_dir / rundir.LABELS_FILE).read_text().split()
  assert labels == names
  assert 6 in checkpoint_steps(str(model_dir))


def test_cli_error_for_a_data_dir_without_folders(tmp_path, capsys):
  code, _, err = cli_in_process(
      capsys, "--experiment=resnet_sgd", f"--model_dir={tmp_path / 'run'}",
      f"--data_dir={tmp_path}",
      "--params_override=" + ",".join(TINY + ["data.source=folder"]))
  assert code == 2
  assert error_line(code, err).startswith(
      f"error: data.source=folder: no class folders in {tmp_path}/train/")
