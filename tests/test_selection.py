"""Selection on the validation split, the test split scored once, and
calibrated probabilities in every output (engine/scoring.py, temperatures.py).

One small train_and_eval run with a validation split and
`eval.calibration=temperature` serves most tests: evaluations at every
checkpoint, export/best, export/latest, then the test split once.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.engine import export, export_dirs, modes
from estimator_cifar.errors import ConfigError
from estimator_cifar.model import temperature as temperature_lib
from estimator_cifar.rundir import calibration, metrics_log
from tests.test_export import raw_test_set
from tests.testutil import CONSTANT_LR, error_line, run_cli, tiny_config

SELECTING = ["data.validation_size=60", "eval.calibration=temperature",
             "train.steps=40", "checkpoint.save_steps=10",
             "eval.throttle_secs=0", "eval.export_best=auto",
             "eval.export_latest=1", "optimizer.learning_rate=0.2",
             *CONSTANT_LR, "eval.batch_size=25", "train.seed=3"]


@pytest.fixture(scope="module")
def selected(tmp_path_factory, cifar10_dir):
  """(model_dir, result) of a run that selects on its validation split."""
  model_dir = str(tmp_path_factory.mktemp("selecting"))
  result = modes.run(tiny_config(*SELECTING), model_dir, "train_and_eval",
                     cifar10_dir)
  return model_dir, result


def _softmax(logits, temperature):
  return temperature_lib.softmax(np.asarray(logits, np.float64), temperature)


@pytest.mark.slow
def test_training_time_evaluations_score_validation_and_test_once(selected):
  model_dir, result = selected
  rows = metrics_log.read(model_dir)
  splits = [row["split"] for row in rows]
  # One evaluation per checkpoint on validation, then the test split once.
  assert splits[-1] == "test" and splits.count("test") == 1, splits
  assert set(splits[:-1]) == {"validation"} and len(splits) >= 4, splits
  test_row = rows[-1]
  assert test_row["checkpoint"] == "model.ckpt-40"
  assert result["split"] == "test"
  assert result["accuracy"] == pytest.approx(test_row["accuracy"])
  # The test evaluation used the final checkpoint's fitted temperature, and
  # reports the uncalibrated figures beside the calibrated ones.
  fitted = calibration.temperature(model_dir, "model.ckpt-40")
  assert fitted is not None and test_row["temperature"] == pytest.approx(fitted)
  assert {"ece_uncalibrated", "nll_uncalibrated", "nll"} <= set(test_row)
  # Separate TensorBoard runs: eval/ (validation) and eval_test/ (test).
  for folder in ("eval", "eval_test"):
    assert tf.io.gfile.glob(os.path.join(model_dir, folder, "events.*")), folder
  assert os.path.isfile(os.path.join(model_dir, "eval", "reliability.png"))


@pytest.mark.slow
def test_export_best_follows_validation_accuracy(selected):
  model_dir, _ = selected
  validation = metrics_log.rows_of(model_dir, "validation")
  best_path, best_accuracy = export.best_export(
      os.path.join(model_dir, "export", "best"))
  info = export_dirs.read_info(best_path)
  top = max(row["accuracy"] for row in validation)
  assert best_accuracy == pytest.approx(top)
  assert info["split"] == "validation"
  # The first checkpoint that reached the top validation accuracy.
  first_top = next(row for row in validation
                   if row["accuracy"] == pytest.approx(top))
  assert info["checkpoint"] == first_top["checkpoint"]
  # Its probabilities carry its own checkpoint's temperature.
  assert info["temperature"] == pytest.approx(
      calibration.temperature(model_dir, info["checkpoint"]))


@pytest.mark.slow
def test_exported_and_predicted_probabilities_are_softmax_of_logits_over_t(
    selected, cifar10_dir, tmp_path):
  model_dir, _ = selected
  images, _ = raw_test_set(cifar10_dir)
  path = export.export_newest(tiny_config(*SELECTING), model_dir, cifar10_dir)
  temperature = calibration.temperature(model_dir, "model.ckpt-40")
  assert temperature != pytest.approx(1.0, abs=1e-3)
  assert export_dirs.read_info(path)["temperature"] == pytest.approx(temperature)
  served = tf.saved_model.load(path).signatures["serving_default"]
  out = served(images=tf.constant(images[:20]))
  np.testing.assert_allclose(out["probabilities"].numpy(),
                             _softmax(out["logits"].numpy(), temperature),
                             atol=1e-5)
  # --mode=predict: the same probabilities for the same image.
  from PIL import Image
  png = str(tmp_path / "one.png")
  Image.fromarray(images[0]).save(png)
  proc = run_cli("--mode=predict", f"--model_dir={model_dir}",
                 f"--images={png}", "--output=json", "--top_k=10")
  assert proc.returncode == 0, proc.stderr
  (row,) = json.loads(proc.stdout)
  got = np.zeros(10)
  for entry in row["predictions"]:
    got[entry["class"]] = entry["probability"]
  np.testing.assert_allclose(got, out["probabilities"].numpy()[0], atol=1e-5)
  # The Predictor serves that export: the same probabilities.
  from estimator_cifar import Predictor
  served_by = Predictor(model_dir)
  assert export_dirs.read_info(served_by.export_path)["temperature"] == \
      pytest.approx(temperature)
  np.testing.assert_allclose(served_by(images[:20]).probabilities,
                             out["probabilities"].numpy(), atol=1e-5)


@pytest.mark.slow
def test_resume_with_nothing_to_train_scores_test_no_more(selected,
                                                          cifar10_dir):
  model_dir, _ = selected
  before = metrics_log.read(model_dir)
  with open(os.path.join(model_dir, "validation_split.json")) as f:
    recorded = json.load(f)
  modes.run(tiny_config(*SELECTING), model_dir, "train_and_eval", cifar10_dir)
  after = metrics_log.read(model_dir)
  assert [row["split"] for row in after].count("test") == 1
  assert len(after) == len(before)
  with open(os.path.join(model_dir, "validation_split.json")) as f:
    assert json.load(f) == recorded  # The split never moves.


def test_export_best_is_off_without_a_validation_split(monkeypatch):
  # log_first_n says it once per process: another test in this process may
  # have used it up, so the call itself is what is checked.
  said = []
  monkeypatch.setattr(export.logging, "log_first_n",
                      lambda level, message, n, *args: said.append(message))
  assert not export.export_best(tiny_config("eval.export_best=auto"))
  assert export.export_best(tiny_config("eval.export_best=auto",
                                        "data.validation_size=10"))
  assert not said
  assert export.export_best(tiny_config("eval.export_best=true"))
  assert len(said) == 1
  assert "chooses its checkpoint on the test split" in said[0]


def test_recorded_boolean_export_best_still_loads():
  from estimator_cifar import config as config_lib
  cfg = config_lib.from_dict({"eval": {"export_best": False}})
  assert cfg.eval.export_best == "false"


def test_calibration_without_validation_split_is_refused():
  with pytest.raises(ConfigError, match="data.validation_size=5000"):
    tiny_config("eval.calibration=temperature")


@pytest.mark.slow
def test_calibrate_and_validation_eval_need_a_validation_split(tmp_path,
                                                               cifar10_dir):
  model_dir = str(tmp_path / "plain")
  modes.run(tiny_config("train.steps=2"), model_dir, "train", cifar10_dir)
  for mode in ("--mode=calibrate", "--mode=eval --split=validation"):
    proc = run_cli(*mode.split(), f"--model_dir={model_dir}")
    line = error_line(proc.returncode, proc.stderr)
    assert "no validation split" in line and "data.validation_size" in line, (
        mode, proc.stderr)


@pytest.mark.slow
def test_continuous_eval_scores_validation_then_the_test_split_once(
    tmp_path, cifar10_dir):
  """A trainer of --mode=train, then the continuous-eval job: it evaluates
  the checkpoints on validation, and the final one on the test split."""
  model_dir = str(tmp_path / "watched")
  overrides = ["data.validation_size=40", "train.steps=20",
               "checkpoint.save_steps=10", "eval.throttle_secs=0",
               "checkpoint.keep_max=5", "eval.timeout_secs=60"]
  modes.run(tiny_config(*overrides, "eval.calibration=temperature"),
            model_dir, "train", cifar10_dir)
  # mode=train fits the final checkpoint's temperature as it ends.
  assert calibration.temperature(model_dir, "model.ckpt-20") is not None
  result = modes.run(tiny_config(*overrides), model_dir, "continuous_eval",
                     cifar10_dir)
  rows = metrics_log.read(model_dir)
  assert [row["split"] for row in rows][-1] == "test"
  assert [row["split"] for row in rows].count("test") == 1
  assert {row["split"] for row in rows[:-1]} == {"validation"}
  assert rows[-1]["checkpoint"] == "model.ckpt-20"
  assert result["split"] == "test"
  # A second job finds everything scored: no new rows.
  modes.run(tiny_config(*overrides), model_dir, "continuous_eval", cifar10_dir)
  assert len(metrics_log.read(model_dir)) == len(rows)
