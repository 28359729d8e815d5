"""What an evaluation leaves behind: metrics.jsonl per class, TensorBoard
image and text, eval/confusion.png; and flip TTA in eval, predict and export."""

import glob
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.data import fake
from estimator_cifar.engine import export, modes
from estimator_cifar.rundir import confusion_plot, metrics_log, run_record
from tests.testutil import CONSTANT_LR, tiny_config

TRAIN = ["train.steps=30", "optimizer.learning_rate=0.4", *CONSTANT_LR,
         "eval.batch_size=20", "train.seed=3"]
TEST_IMAGES = 50  # The cifar10_dir fixture's test split.


def raw_test_images(data_dir: str, count: int) -> np.ndarray:
  """The first `count` raw uint8 test images [N, 32, 32, 3] of the fixture."""
  path = os.path.join(data_dir, "cifar-10-batches-bin", "test_batch.bin")
  records = np.fromfile(path, np.uint8).reshape(-1, 3073)[:count]
  return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar10_dir):
  model_dir = str(tmp_path_factory.mktemp("eval_outputs"))
  modes.run(tiny_config(*TRAIN), model_dir, "train", cifar10_dir)
  return model_dir


@pytest.mark.slow
def test_mode_eval_writes_per_class_metrics_and_confusion_png(trained,
                                                              cifar10_dir):
  result = modes.run(tiny_config(*TRAIN), trained, "eval", cifar10_dir)
  row = metrics_log.read(trained)[-1]
  counts = np.array(row["confusion_matrix"])
  assert counts.shape == (10, 10) and counts.sum() == TEST_IMAGES
  # Per class (by name) and overall accuracy agree with the matrix.
  for i, name in enumerate(fake.LABEL_NAMES_10):
    total = counts[i].sum()
    want = counts[i, i] / total if total else 0.0
    assert row[f"per_class_accuracy/{name}"] == pytest.approx(want, abs=1e-6)
  assert np.trace(counts) / TEST_IMAGES == pytest.approx(row["accuracy"])
  assert 0.0 <= row["ece"] <= 1.0
  # Serialized summaries stay out of the JSON log but are in the result.
  assert "confusion_image" not in row and "confusion_text" not in row
  assert isinstance(result["confusion_image"], bytes)
  with open(confusion_plot.path(trained), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_eval_events_hold_the_confusion_image_and_text(trained, cifar10_dir):
  modes.run(tiny_config(*TRAIN), trained, "eval", cifar10_dir)
  tags = set()
  for path in glob.glob(os.path.join(trained, "eval", "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update((v.tag, v.WhichOneof("value")) for v in event.summary.value)
  assert ("confusion_image/0", "image") in tags
  assert ("confusion_text/0", "tensor") in tags
  assert ("per_class_accuracy/airplane", "simple_value") in tags
  assert ("ece", "simple_value") in tags


def test_without_matplotlib_the_png_is_skipped_with_a_log_line(
    monkeypatch, caplog, tmp_path):
  monkeypatch.setitem(sys.modules, "matplotlib", None)  # Import fails.
  assert confusion_plot.write(str(tmp_path), np.eye(3, dtype=int),
                              ["a", "b", "c"]) is None
  assert not os.path.exists(confusion_plot.path(str(tmp_path)))
  assert "matplotlib is not installed" in caplog.text


def test_run_info_keeps_the_matrix_as_numbers(tmp_path, cifar10_dir):
  record = run_record.start(tiny_config(), str(tmp_path), "train", cifar10_dir)
  done = run_record.end(record, None, {"accuracy": np.float32(0.5),
                                       "confusion_matrix": np.eye(2, dtype=np.int64),
                                       "confusion_image": b"\x00\x01"})
  assert done["final_metrics"]["confusion_matrix"] == [[1, 0], [0, 1]]
  assert "confusion_image" not in done["final_metrics"]
  json.loads(open(run_record.path(str(tmp_path))).read())


def _predict_logits(model_dir, tta, images):
  cfg = tiny_config(*TRAIN, f"eval.tta={tta}")
  return _predict_features(model_dir, tta, export.preprocess(tf.constant(images), cfg))


def _predict_features(model_dir, tta, features):
  """Logits of the model input `features` (already preprocessed) under `tta`."""
  cfg = tiny_config(*TRAIN, f"eval.tta={tta}")
  estimator = export.serving_estimator(cfg, model_dir, 10)

  def input_fn():
    return tf.data.Dataset.from_tensors({"images": tf.constant(features)})

  rows = estimator.predict(input_fn, predict_keys=["logits"],
                           yield_single_examples=False)
  return np.concatenate([r["logits"] for r in rows])


@pytest.mark.slow
def test_flip_tta_is_the_mean_of_two_forward_passes(trained, cifar10_dir):
  images = raw_test_images(cifar10_dir, 8)
  plain = _predict_logits(trained, "none", images)
  mirrored = _predict_logits(trained, "none", images[:, :, ::-1, :])
  averaged = _predict_logits(trained, "flip", images)
  np.testing.assert_allclose(averaged, (plain + mirrored) / 2, rtol=1e-5,
                             atol=1e-5)
  assert not np.allclose(averaged, plain, atol=1e-4)  # The flip mattered.


@pytest.mark.slow
def test_flip_translate_tta_weights_six_views_by_hand(trained, cifar10_dir):
  images = raw_test_images(cifar10_dir, 8)
  cfg = tiny_config(*TRAIN)
  features = export.preprocess(tf.constant(images), cfg).numpy()
  padded = np.pad(features, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
  up_left, down_right = padded[:, :32, :32], padded[:, 2:, 2:]

  def flip_mean(x):
    return (_predict_features(trained, "none", x)
            + _predict_features(trained, "none", x[:, :, ::-1])) / 2

  expected = (0.5 * flip_mean(features) + 0.25 * flip_mean(up_left)
              + 0.25 * flip_mean(down_right))
  averaged = _predict_logits(trained, "flip_translate", images)
  np.testing.assert_allclose(averaged, expected, rtol=1e-5, atol=1e-5)
  assert not np.allclose(averaged, flip_mean(features), atol=1e-4)


@pytest.mark.slow
def test_flip_tta_reaches_the_saved_model(trained, cifar10_dir):
  images = raw_test_images(cifar10_dir, 4)
  cfg = tiny_config(*TRAIN, "eval.tta=flip")
  path = export.export_model(export.serving_estimator(cfg, trained, 10), cfg,
                             os.path.join(trained, "export_tta"))
  serve = tf.saved_model.load(path).signatures["serving_default"]
  served = serve(images=tf.constant(images))["logits"].numpy()
  np.testing.assert_allclose(served, _predict_logits(trained, "flip", images),
                             rtol=1e-5, atol=1e-5)
