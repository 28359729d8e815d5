"""Temperature scaling: the fit, its figures, model_fn's use of T, the
calibration.json records, the reliability diagram and fitting a checkpoint."""

import json
import logging
import os
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.engine import calibrate
from estimator_cifar.model import eval_metrics, temperature
from estimator_cifar.model.keys import IMAGES_KEY
from estimator_cifar.model.model_fn import ModelParams, model_fn
from estimator_cifar.rundir import calibration, reliability_plot
from tests.testutil import tiny_config

v1 = tf.compat.v1
ModeKeys = tf.estimator.ModeKeys
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _sampled(true_temperature: float, n: int = 4000, classes: int = 10,
             seed: int = 0):
  """Logits and labels drawn from softmax(logits / true_temperature).

  The logits' own softmax is over-confident for a true T > 1 and
  under-confident for T < 1; the fit should find T back.
  """
  rng = np.random.default_rng(seed)
  logits = rng.normal(0.0, 3.0, (n, classes))
  probabilities = temperature.softmax(logits, true_temperature)
  # Inverse-CDF sampling of one label per row.
  draws = rng.random((n, 1))
  labels = (probabilities.cumsum(axis=1) < draws).sum(axis=1)
  return logits, np.minimum(labels, classes - 1)


@pytest.mark.parametrize("true_temperature", [2.0, 0.5])
def test_the_fit_lowers_nll_on_examples_it_did_not_see(true_temperature):
  logits, labels = _sampled(true_temperature)
  half = len(labels) // 2
  fitted = temperature.fit(logits[:half], labels[:half])
  # Over-confident logits are softened, under-confident ones sharpened.
  assert (fitted > 1.0) == (true_temperature > 1.0)
  held_out = logits[half:], labels[half:]
  assert temperature.nll(*held_out, fitted) < temperature.nll(*held_out) - 0.02
  assert temperature.ece(*held_out, fitted) < temperature.ece(*held_out)


def test_the_fit_recovers_a_known_temperature_at_the_nll_minimum():
  logits, labels = _sampled(2.5, n=8000, seed=1)
  fitted = temperature.fit(logits, labels)
  assert fitted == pytest.approx(2.5, rel=0.08)
  # A true minimum of the NLL to the search's precision.
  best = temperature.nll(logits, labels, fitted)
  for nearby in (fitted * 0.99, fitted * 1.01):
    assert temperature.nll(logits, labels, nearby) > best


def test_nll_is_stable_for_huge_logits():
  logits = np.array([[1e4, 0.0], [0.0, 1e4]])
  assert temperature.nll(logits, np.array([0, 1])) == pytest.approx(0.0)
  assert temperature.nll(logits, np.array([1, 1])) == pytest.approx(5e3)


@pytest.mark.parametrize("logits, labels, message", [
    (np.zeros([0, 3]), np.zeros([0], int), "non-empty"),
    (np.zeros([4, 3]), np.zeros([3], int), "one per row"),
    (np.array([[0.0, np.nan], [0.0, 1.0]]), np.array([0, 1]), "finite: 1 of 4"),
    (np.zeros([2, 3]), np.array([0, 3]), r"in \[0, 3\)"),
    (np.zeros([2, 3]), np.array([0.0, 1.0]), "integers"),
])
def test_bad_input_is_a_value_error_naming_it(logits, labels, message):
  for figure in (temperature.fit, temperature.nll, temperature.ece):
    with pytest.raises(ValueError, match=message):
      figure(logits, labels)


def test_a_temperature_that_is_not_positive_is_refused():
  with pytest.raises(ValueError, match="positive finite"):
    temperature.nll(np.zeros([2, 3]), np.array([0, 1]), 0.0)


def _streamed(labels, logits, temperature_value, batch=70):
  """failure_metrics' values over `labels`/`logits` fed in batches."""
  with tf.Graph().as_default():
    labels_in = v1.placeholder(tf.int32, [None])
    logits_in = v1.placeholder(tf.float32, [None, logits.shape[1]])
    metrics = eval_metrics.failure_metrics(labels_in, logits_in, None,
                                           temperature_value)
    with v1.Session() as sess:
      sess.run(v1.local_variables_initializer())
      for start in range(0, len(labels), batch):
        sess.run([update for _, update in metrics.values()],
                 {labels_in: labels[start:start + batch],
                  logits_in: logits[start:start + batch]})
      return sess.run({k: value for k, (value, _) in metrics.items()})


def test_streaming_metrics_match_numpy_calibrated_and_not():
  logits, labels = _sampled(2.0, n=300)
  logits = logits.astype(np.float32)
  result = _streamed(labels, logits, 2.5)
  for suffix, t in (("", 2.5), (eval_metrics.UNCALIBRATED_SUFFIX, 1.0)):
    assert result["ece" + suffix] == pytest.approx(
        temperature.ece(logits, labels, t), abs=1e-5)
    assert result["nll" + suffix] == pytest.approx(
        temperature.nll(logits, labels, t), rel=1e-5)
    reliability = result["reliability" + suffix]
    assert reliability.shape == (3, temperature.ECE_BINS)
    np.testing.assert_allclose(
        reliability, temperature.bin_statistics(logits, labels, t), atol=1e-6)
  # The calibrated figures differ from the raw ones: T reached them.
  assert result["nll"] < result["nll_uncalibrated"]


def test_uncalibrated_metrics_appear_only_with_a_temperature():
  logits, labels = _sampled(2.0, n=50)
  plain = _streamed(labels, logits.astype(np.float32), 1.0)
  assert {"ece", "nll", "reliability"} <= set(plain)
  assert not [key for key in plain if key.endswith("_uncalibrated")]


def _spec(mode, temperature_value):
  images = tf.constant(np.random.default_rng(2).random([4, 32, 32, 3]),
                       tf.float32)
  labels = tf.constant([0, 1, 2, 3], tf.int32)
  params = ModelParams(config=tiny_config(), num_classes=10,
                       temperature=temperature_value)
  return model_fn({IMAGES_KEY: images}, labels, mode, params)


def test_predictions_are_softmax_of_logits_over_the_temperature():
  with tf.Graph().as_default():
    spec = _spec(ModeKeys.PREDICT, 2.5)
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      out = sess.run(spec.predictions)
      served = sess.run(spec.export_outputs["serving_default"].outputs)
  np.testing.assert_allclose(out["probabilities"],
                             temperature.softmax(out["logits"], 2.5), atol=1e-6)
  np.testing.assert_array_equal(out["classes"], out["logits"].argmax(axis=1))
  np.testing.assert_allclose(served["probabilities"], out["probabilities"])


@pytest.mark.parametrize("temperature_value, uncalibrated", [(1.0, False),
                                                             (2.5, True)])
def test_eval_spec_reports_uncalibrated_metrics_only_when_t_is_not_1(
    temperature_value, uncalibrated):
  with tf.Graph().as_default():
    ops = _spec(ModeKeys.EVAL, temperature_value).eval_metric_ops
    with v1.Session() as sess:
      sess.run([v1.global_variables_initializer(),
                v1.local_variables_initializer()])
      sess.run([update for _, update in ops.values()])
      result = sess.run({k: value for k, (value, _) in ops.items()})
  keys = ("ece_uncalibrated", "nll_uncalibrated", "reliability_uncalibrated")
  assert all((key in result) == uncalibrated for key in keys)
  # cross_entropy stays that of the raw logits.
  raw_nll = result["nll_uncalibrated" if uncalibrated else "nll"]
  assert raw_nll == pytest.approx(result["cross_entropy"], rel=1e-5)
  if uncalibrated:
    assert result["nll"] != pytest.approx(result["cross_entropy"], rel=1e-3)


def test_calibration_json_round_trip_by_basename(tmp_path):
  model_dir = str(tmp_path)
  figures = {"temperature": 1.7, "images": 500, "nll_before": 0.9,
             "nll_after": 0.7, "ece_before": 0.2, "ece_after": 0.03}
  entry = calibration.record(model_dir, "/elsewhere/model.ckpt-1200", 1.7,
                             figures)
  assert entry["global_step"] == 1200 and entry["fitted_on"] == "validation"
  assert calibration.temperature(model_dir,
                                 os.path.join(model_dir, "model.ckpt-1200")) == 1.7
  assert calibration.temperature(model_dir, "model.ckpt-5") is None
  calibration.record(model_dir, "model.ckpt-1300", 1.5, figures)
  stored = calibration.read(model_dir)
  assert set(stored) == {"model.ckpt-1200", "model.ckpt-1300"}
  assert stored["model.ckpt-1200"]["nll_after"] == 0.7
  assert [name for name in os.listdir(model_dir)] == [calibration.FILENAME]


def test_only_the_newest_records_are_kept(tmp_path):
  for step in range(calibration.MAX_RECORDS + 3):
    calibration.record(str(tmp_path), f"model.ckpt-{step}", 1.0 + step, {})
  names = set(calibration.read(str(tmp_path)))
  assert len(names) == calibration.MAX_RECORDS
  assert "model.ckpt-2" not in names and "model.ckpt-3" in names


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"a": 3}'])
def test_a_garbage_file_warns_and_reads_as_no_temperature(
    tmp_path, caplog, content):
  (tmp_path / calibration.FILENAME).write_text(content)
  with caplog.at_level(logging.WARNING):
    assert calibration.temperature(str(tmp_path), "model.ckpt-1") is None
  assert "calibration.json is ignored" in caplog.text


def test_a_record_without_a_positive_temperature_reads_as_none(tmp_path, caplog):
  (tmp_path / calibration.FILENAME).write_text(
      json.dumps({"model.ckpt-1": {"temperature": -2}}))
  assert calibration.temperature(str(tmp_path), "model.ckpt-1") is None
  assert "no positive temperature" in caplog.text


def test_reliability_png_is_written(tmp_path):
  logits, labels = _sampled(2.0, n=200)
  written = reliability_plot.write(
      str(tmp_path), temperature.bin_statistics(logits, labels, 2.0),
      temperature.bin_statistics(logits, labels), title="run step 10")
  assert written == reliability_plot.path(str(tmp_path))
  with open(written, "rb") as f:
    assert f.read(8) == PNG_SIGNATURE
  assert os.listdir(tmp_path / "eval") == [reliability_plot.FILENAME]


def test_reliability_points_skip_empty_bins():
  statistics = np.zeros([3, temperature.ECE_BINS])
  statistics[:, 14] = [0.5, 0.25, 0.48]  # Half the examples, accuracy 0.5.
  confidence, accuracy = reliability_plot.points(statistics)
  np.testing.assert_allclose(confidence, [0.96])
  np.testing.assert_allclose(accuracy, [0.5])


def test_without_matplotlib_the_reliability_png_is_skipped(
    tmp_path, monkeypatch, caplog):
  monkeypatch.setitem(sys.modules, "matplotlib", None)  # Import fails.
  assert reliability_plot.write(str(tmp_path),
                                np.zeros([3, temperature.ECE_BINS])) is None
  assert not os.path.exists(reliability_plot.path(str(tmp_path)))
  assert "matplotlib is not installed" in caplog.text


VALIDATION_IMAGES = 24


def _validation_source():
  """A DataSource-like object whose validation split is seeded noise."""
  rng = np.random.default_rng(3)
  images = rng.integers(0, 256, [VALIDATION_IMAGES, 32, 32, 3], np.uint8)
  labels = rng.integers(0, 10, VALIDATION_IMAGES).astype(np.int32)

  def records(split):
    assert split == "validation"
    return tf.data.Dataset.from_tensor_slices((images, labels))
  return (types.SimpleNamespace(records=records, read_labels=None), images,
          labels)


def test_fit_checkpoint_fits_the_validation_logits(tmp_path):
  source, images, labels = _validation_source()
  np.testing.assert_array_equal(calibrate.validation_labels(source), labels)

  def input_fn(count=VALIDATION_IMAGES):
    features = {IMAGES_KEY: tf.cast(images[:count], tf.float32) / 255.0}
    return tf.data.Dataset.from_tensor_slices(
        (features, labels[:count])).batch(10)

  estimator = tf.estimator.Estimator(
      model_fn, model_dir=str(tmp_path),
      params=ModelParams(config=tiny_config(), num_classes=10))
  estimator.train(input_fn, steps=1)
  checkpoint = estimator.latest_checkpoint()
  figures = calibrate.fit_checkpoint(estimator, input_fn, labels, checkpoint)
  assert figures["images"] == VALIDATION_IMAGES
  # The figures are those of the checkpoint's own logits.
  logits = np.concatenate([batch["logits"] for batch in estimator.predict(
      input_fn, predict_keys=["logits"], checkpoint_path=checkpoint,
      yield_single_examples=False)])
  assert figures["temperature"] == pytest.approx(temperature.fit(logits, labels))
  assert figures["nll_after"] <= figures["nll_before"]
  assert figures["nll_before"] == pytest.approx(temperature.nll(logits, labels))
  with pytest.raises(ValueError, match="gave 20 images for 24 labels"):
    calibrate.fit_checkpoint(estimator, lambda: input_fn(20), labels,
                             checkpoint)


def test_the_ece_floor_is_what_calibrated_draws_show_and_shrinks_with_images():
  """Labels drawn at the model's own confidence: the measured ECE sits at the
  floor, and the floor falls as the test set grows."""
  rng = np.random.default_rng(5)
  logits = rng.normal(0, 2.5, [400, 10])
  probabilities = temperature.softmax(logits)
  top = probabilities.argmax(axis=1)
  right = rng.random(400) < probabilities.max(axis=1)
  labels = np.where(right, top, (top + 1 + rng.integers(0, 9, 400)) % 10)
  statistics = temperature.bin_statistics(logits, labels)
  median, p90 = temperature.ece_floor(statistics, 400)
  assert 0.01 < median < p90 < 0.15
  assert temperature.ece(logits, labels) < p90 * 1.5
  assert temperature.ece_floor(statistics, 40000)[0] < median / 5


def test_the_ece_floor_tool_reads_a_runs_newest_test_row(tmp_path):
  from tests.testutil import run_tool
  statistics = [[0.5, 0.5], [0.25, 0.45], [0.3, 0.45]]
  row = {"global_step": 9, "split": "test", "ece": 0.05,
         "confusion_matrix": [[150, 50], [50, 150]],
         "reliability": statistics, "checkpoint": "model.ckpt-9"}
  os.makedirs(tmp_path / "run" / "eval")
  (tmp_path / "run" / "eval" / "metrics.jsonl").write_text(json.dumps(row) + "\n")
  proc = run_tool("ece_floor", str(tmp_path / "run"))
  assert proc.returncode == 0, proc.stderr
  out = json.loads(proc.stdout)
  assert out["images"] == 400 and out["ece"] == 0.05
  assert (out["floor_median"], out["floor_p90"]) == pytest.approx(
      temperature.ece_floor(statistics, 400), abs=1e-4)
  missing = run_tool("ece_floor", "--split=validation", str(tmp_path / "run"))
  assert missing.returncode == 2
  assert missing.stderr.startswith("error: ") and "validation" in missing.stderr
