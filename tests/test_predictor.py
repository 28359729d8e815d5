"""Predictor: loads an export once, serves from memory, is thread-safe, and
answers bad input with one DataError; the exported signatures reject
malformed requests without aborting the process that serves them."""

import concurrent.futures
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import Predictor
from estimator_cifar.data import fake
from estimator_cifar.engine import export_dirs, modes
from estimator_cifar.errors import DataError
from tests.testutil import png_header, seconds, subprocess_env, tiny_config

pytestmark = pytest.mark.slow  # Each module fixture trains a tiny model.


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, cifar10_dir):
  path = str(tmp_path_factory.mktemp("predictor") / "run")
  modes.run(tiny_config("train.steps=10"), path, "train", cifar10_dir)
  return path


@pytest.fixture(scope="module")
def predictor(model_dir):
  return Predictor(model_dir)


def images(n: int, seed: int = 0) -> np.ndarray:
  return np.random.RandomState(seed).randint(0, 256, [n, 32, 32, 3]).astype(np.uint8)


def exports(model_dir: str) -> list[str]:
  return export_dirs.finished_exports(os.path.join(model_dir, "export"))


def test_loads_the_newest_checkpoint_once_and_reload_picks_up_a_newer(
    model_dir, predictor, cifar10_dir):
  assert exports(model_dir) == [predictor.export_path]
  assert Predictor(model_dir).export_path == predictor.export_path  # Reused.
  before = predictor(images(8)).probabilities
  # Training on after the Predictor loaded: it keeps serving what it loaded...
  modes.run(tiny_config("train.steps=20"), model_dir, "train", cifar10_dir)
  np.testing.assert_array_equal(predictor(images(8)).probabilities, before)
  # ...until reload(), which exports the new checkpoint and serves it.
  path = predictor.reload()
  assert export_dirs.read_info(path)["global_step"] == 20
  assert len(exports(model_dir)) == 2
  assert np.abs(predictor(images(8)).probabilities - before).max() > 1e-6


def test_eight_threads_get_the_serial_answers(predictor):
  batch = images(100, seed=1)
  serial = [predictor(batch[i:i + 1 + i % 3]).probabilities for i in range(100)]

  def calls(_):
    return [predictor(batch[i:i + 1 + i % 3]).probabilities for i in range(100)]

  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    for answers in pool.map(calls, range(8)):
      for got, want in zip(answers, serial):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bad, message", [
    (np.zeros([0, 32, 32, 3], np.uint8), r"empty array \(0, 32, 32, 3\)"),
    (np.full([2, 32, 32, 3], 0.5, np.float32),
     r"scaled to \[0, 1\]: convert with np.round\(x \* 255\)"),
    (np.full([2, 32, 32, 3], 200.0), r"float64 in \[200, 200\]. Convert with "
                                     r"np.round\(x\).astype\(np.uint8\)"),
    (np.zeros([2, 16, 16, 3], np.uint8), r"got shape \(2, 16, 16, 3\)"),
    (np.zeros([32, 32], np.uint8), r"got shape \(32, 32\)"),
    (b"", r"image 0 \(bytes\) is empty"),
    (b"not an image", r"could not decode image 0 \(bytes\)"),
    ([], "got no images"),
])
def test_bad_input_is_one_data_error(predictor, bad, message):
  with pytest.raises(DataError, match=message):
    predictor(bad)


def test_bytes_claiming_a_huge_size_are_refused_before_decoding(predictor):
  bomb = png_header(20000, 20000) + b"\0" * 1000
  with pytest.raises(DataError, match=r"^image 1 \(bytes\) is 20000x20000: "
                     r"400,000,000 pixels once decoded, over the limit of "):
    predictor([tf.io.encode_png(images(1)[0]).numpy(), bomb])


def test_missing_file_error_speaks_to_python_not_the_cli(predictor, tmp_path):
  with pytest.raises(DataError) as raised:
    predictor([str(tmp_path / "nope.png")])
  assert "nope.png does not exist" in str(raised.value)
  assert "--images" not in str(raised.value)


def test_files_carry_their_names_and_a_resize_is_reported(
    predictor, tmp_path, caplog):
  folder = tmp_path / "photos"
  folder.mkdir()
  pixels = images(3, seed=2)
  for i, image in enumerate(pixels[:2]):
    tf.io.write_file(str(folder / f"{i}.png"), tf.io.encode_png(image))
  wide = str(tmp_path / "wide.jpg")
  tf.io.write_file(wide, tf.io.encode_jpeg(np.zeros([96, 128, 3], np.uint8)))
  caplog.set_level(logging.WARNING)
  out = predictor([str(folder), wide])
  assert out.files == [str(folder / "0.png"), str(folder / "1.png"), wide]
  np.testing.assert_allclose(out.probabilities[:2],
                             predictor(pixels[:2]).probabilities, atol=1e-6)
  resized = [r.getMessage() for r in caplog.records if "resized" in r.getMessage()]
  assert len(resized) == 1 and "wide.jpg is 128x96" in resized[0]
  assert predictor(pixels[:2]).files is None
  png = tf.io.encode_png(pixels[2]).numpy()
  assert predictor(png).classes == predictor([png]).classes == \
      predictor(pixels[2]).classes
  assert out.class_names == list(fake.LABEL_NAMES_10)


# Sends each malformed request to the exported signatures in a process of its
# own, as a model server would: each must fail alone, the process go on.
_SERVE_BAD_REQUESTS = textwrap.dedent("""
    import sys, numpy as np, tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    images = model.signatures["serving_default"]
    encoded = model.signatures["image_bytes:serving_default"]
    requests = [
        (images, "images", np.zeros([32, 32, 3], np.uint8)),
        (images, "images", np.zeros([2, 16, 16, 3], np.uint8)),
        (images, "images", np.zeros([0, 32, 32, 3], np.uint8)),
        (encoded, "image_bytes", np.array([[b"x"]])),
        (encoded, "image_bytes", np.array(b"x")),
        (encoded, "image_bytes", np.array([], object)),
    ]
    for signature, name, request in requests:
      try:
        signature(**{name: tf.constant(request)})
        print("served", request.shape)
      except tf.errors.InvalidArgumentError as e:
        print("rejected", request.shape, e.message.splitlines()[-2:])
    print(images(images=tf.zeros([2, 32, 32, 3], tf.uint8))["classes"].shape)
    """)


def test_exported_signatures_reject_malformed_requests_without_aborting(predictor):
  done = subprocess.run(
      [sys.executable, "-c", _SERVE_BAD_REQUESTS, predictor.export_path],
      capture_output=True, text=True, timeout=seconds(120), env=subprocess_env())
  assert done.returncode == 0, done.stderr[-3000:]
  lines = done.stdout.splitlines()
  assert [line.split()[0] for line in lines[:-1]] == ["rejected"] * 6, lines
  assert "images [32,32,3] is not compatible" in lines[0]
  assert "empty batch" in lines[2] and "empty batch" in lines[5]
  assert lines[-1] == "(2,)"


def test_a_run_without_checkpoint_is_one_error_naming_predictor(tmp_path):
  from estimator_cifar.errors import CheckpointError
  with pytest.raises(CheckpointError,
                     match=r"^Predictor found no checkpoint in .*Train first"):
    Predictor(str(tmp_path), experiment="resnet_sgd")


def test_a_damaged_file_among_good_ones_is_named(predictor, tmp_path):
  good = tf.io.encode_png(images(1)[0]).numpy()
  paths = []
  for i, data in enumerate([good, good[:40], good]):
    paths.append(str(tmp_path / f"{i}.png"))
    open(paths[-1], "wb").write(data)
  with pytest.raises(DataError, match=r"could not decode .*1\.png: it is not"):
    predictor(paths)


def test_calls_during_reload_finish_on_a_whole_model(predictor):
  batch = images(4, seed=4)
  want = predictor(batch).probabilities
  stop = False

  def calls(_):
    answers = 0
    while not stop or answers == 0:
      np.testing.assert_array_equal(predictor(batch).probabilities, want)
      answers += 1
    return answers

  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    running = [pool.submit(calls, i) for i in range(4)]
    for _ in range(3):
      predictor.reload()  # A new session each time, swapped in whole.
    stop = True
    assert all(future.result() > 0 for future in running)
