"""Image folders and files from elsewhere: `--images` never hangs, never
decodes a bomb, names the bad file, and takes names with commas."""

import errno
import os
import struct

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.data import image_files
from estimator_cifar.engine import modes, predict
from estimator_cifar.errors import ConfigError, DataError
from tests.testutil import (TINY, cli_in_process, png_header, run_cli,
                            tiny_config)


def write_png(path, side: int = 32, value: int = 0) -> str:
  tf.io.write_file(str(path), tf.io.encode_png(
      np.full([side, side, 3], value, np.uint8)))
  return str(path)


def test_png_claiming_a_huge_size_is_refused_before_decoding(tmp_path, monkeypatch):
  bomb = tmp_path / "bomb.png"
  bomb.write_bytes(png_header(20000, 20000) + b"\0" * 1000)
  with pytest.raises(DataError) as e:
    predict.image_paths(str(bomb))
  message = str(e.value)
  assert f"{bomb} is 20000x20000: 400,000,000 pixels" in message
  assert f"limit of {image_files.MAX_PIXELS:,}" in message
  assert f"{image_files.MAX_PIXELS_ENV}=400000000" in message  # How to raise it.
  monkeypatch.setenv(image_files.MAX_PIXELS_ENV, "400000000")
  assert image_files.check_image(str(bomb)) == (20000, 20000)
  monkeypatch.setenv(image_files.MAX_PIXELS_ENV, "lots")
  with pytest.raises(ConfigError, match=f"{image_files.MAX_PIXELS_ENV}='lots'"):
    image_files.check_image(str(bomb))


def test_jpeg_size_is_read_past_other_segments(tmp_path):
  encoded = tf.io.encode_jpeg(np.zeros([40, 48, 3], np.uint8)).numpy()
  # An APP1 segment (as EXIF writes) before the frame header must be skipped.
  app1 = b"\xff\xe1" + struct.pack(">H", 2 + 300) + b"\xab" * 300
  path = tmp_path / "a.jpg"
  path.write_bytes(encoded[:2] + app1 + encoded[2:])
  assert image_files.check_image(str(path)) == (48, 40)
  start = encoded.index(b"\xff\xc0") + 5  # The frame's height, then width.
  huge = encoded[:start] + struct.pack(">HH", 30000, 30000) + encoded[start + 4:]
  path.write_bytes(huge)
  with pytest.raises(DataError, match="a.jpg is 30000x30000"):
    image_files.check_image(str(path))


def test_folder_reads_only_regular_files(tmp_path, caplog):
  folder = tmp_path / "imgs"
  folder.mkdir()
  good = write_png(folder / "b.png")
  os.mkfifo(folder / "fifo.png")
  (folder / "sub.png").mkdir()
  os.symlink("loop.png", folder / "loop.png")  # Points at itself.
  os.symlink("gone.png", folder / "broken.jpg")
  (folder / "notes.txt").write_text("not an image")
  assert predict.image_paths(str(folder)) == [good]
  skipped = "\n".join(r.getMessage() for r in caplog.records)
  assert f"Skipping {folder}/loop.png: a symlink loop." in skipped
  assert f"Skipping {folder}/fifo.png: not a regular file." in skipped
  assert f"Skipping {folder}/sub.png: not a regular file." in skipped
  assert f"Skipping {folder}/broken.jpg:" in skipped


def test_named_fifo_loop_and_unreadable_file_are_errors(tmp_path, monkeypatch):
  os.mkfifo(tmp_path / "fifo.png")  # Opening it to read would wait for a writer.
  with pytest.raises(DataError, match="fifo.png is not a regular file"):
    predict.image_paths(str(tmp_path / "fifo.png"))
  os.symlink("loop.png", tmp_path / "loop.png")
  with pytest.raises(DataError, match="loop.png: Too many levels of symbolic"):
    predict.image_paths(str(tmp_path / "loop.png"))
  locked = write_png(tmp_path / "locked.png")

  def refuse(path, flags):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

  monkeypatch.setattr(image_files.os, "open", refuse)  # Root reads past chmod.
  with pytest.raises(DataError, match="Cannot read the image .*locked.png: "
                     "Permission denied"):
    image_files.check_image(locked)


def test_images_values_repeat_and_names_may_hold_commas(tmp_path):
  comma = write_png(tmp_path / "cat, sitting.png")
  a = write_png(tmp_path / "a.png")
  b = write_png(tmp_path / "b.png")
  assert predict.image_paths(comma) == [comma]
  assert predict.image_paths([comma, f"{a},{b}"]) == [comma, a, b]
  with pytest.raises(DataError, match="c.png does not exist"):
    predict.image_paths(f"{a},{tmp_path}/c.png")


@pytest.mark.slow
def test_cli_folder_with_a_fifo_neither_hangs_nor_tracebacks(trained, tmp_path):
  folder = tmp_path / "imgs"
  folder.mkdir()
  os.mkfifo(folder / "a.png")
  (folder / "x.png").mkdir()
  os.symlink("loop.png", folder / "loop.png")
  done = run_cli("--experiment=resnet_sgd", "--mode=predict",
                 f"--model_dir={trained}", f"--images={folder}",
                 timeout=60)  # Before, reading the FIFO blocked forever.
  assert done.returncode == 2, done.stderr[-2000:]
  assert "Traceback" not in done.stderr
  assert f"error: --images: directory {folder} has no" in done.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny model trained for 2 steps on synthetic data (10 classes)."""
  model_dir = str(tmp_path_factory.mktemp("tiny_run"))
  modes.run(tiny_config("data.name=synthetic", "train.steps=2"), model_dir, "train")
  return model_dir


@pytest.mark.slow
def test_truncated_image_among_many_is_named(trained, tmp_path):
  paths = [write_png(tmp_path / f"img{i:02d}.png", value=i) for i in range(40)]
  with open(paths[17], "r+b") as f:
    f.truncate(60)  # The header survives; the pixels do not.
  with pytest.raises(DataError) as e:
    predict.run_predict(tiny_config("data.name=synthetic"), trained,
                        str(tmp_path))
  message = str(e.value)
  assert message.startswith(f"Could not decode {paths[17]}: ")
  assert paths[16] not in message and paths[18] not in message


@pytest.mark.slow
def test_short_label_names_is_one_error(trained, tmp_path, capsys):
  labels = os.path.join(trained, "label_names.txt")
  with open(labels) as f:
    kept = f.read()
  image = write_png(tmp_path / "a.png")
  try:
    with open(labels, "w") as f:
      f.write("cat\ndog\nbird\n")
    code, _, err = cli_in_process(
        capsys, "--mode=predict", f"--model_dir={trained}", f"--images={image}",
        "--params_override=" + ",".join(TINY + ["data.name=synthetic"]))
  finally:
    with open(labels, "w") as f:
      f.write(kept)
  assert code == 2
  assert err.strip().splitlines()[-1] == (
      f"error: {labels} names 3 classes, but the model in {trained} has 10. "
      "Write one name per class, one a line, or delete the file to take the "
      "names from the data.")
