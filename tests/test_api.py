"""The Python API: train, evaluate and Predictor, in process on a tiny model."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import estimator_cifar
from estimator_cifar import config as config_lib
from estimator_cifar.data import fake
from estimator_cifar.errors import ConfigError, DataError
from estimator_cifar.rundir import metrics_log
from tests.testutil import TINY, seconds, subprocess_env

# Every test here trains (or runs the CLI on) a tiny model.
pytestmark = pytest.mark.slow


def overrides(**extra):
  """TINY as a dict, the form a notebook would write."""
  values = dict(item.split("=", 1) for item in TINY)
  values.update({"train.steps": 40, "optimizer.learning_rate": 0.1,
                 "schedule.name": "constant", "schedule.boundaries_epochs": [],
                 "schedule.multipliers": [], "ema.decay": 0,
                 "eval.batch_size": 50})
  values.update(extra)
  return values


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar10_dir):
  model_dir = str(tmp_path_factory.mktemp("api") / "run")
  metrics = estimator_cifar.train("resnet_sgd", overrides=overrides(),
                                  model_dir=model_dir, data_dir=cifar10_dir)
  return model_dir, metrics


def test_train_returns_final_metrics_as_numbers(trained):
  model_dir, metrics = trained
  assert metrics["global_step"] == 40 and type(metrics["global_step"]) is int
  assert type(metrics["accuracy"]) is float and 0 <= metrics["accuracy"] <= 1
  assert metrics_log.read(model_dir)[-1]["accuracy"] == pytest.approx(
      metrics["accuracy"])


def test_evaluate_reads_the_recorded_config(trained):
  model_dir, metrics = trained
  again = estimator_cifar.evaluate(model_dir)
  assert again["global_step"] == 40
  assert again["accuracy"] == pytest.approx(metrics["accuracy"])


def test_results_are_short_plain_numbers_with_a_history(trained):
  model_dir, metrics = trained
  assert set(metrics) == set(estimator_cifar.api.RESULT_KEYS) | {"history"}
  assert all(type(metrics[k]) in (int, float)
             for k in estimator_cifar.api.RESULT_KEYS if k != "split")
  assert metrics["split"] == "test"  # No validation split: the test split.
  history = metrics["history"]
  assert [row["global_step"] for row in history][-1] == 40
  assert all(set(row) == set(estimator_cifar.api.HISTORY_KEYS)
             for row in history)
  again = estimator_cifar.evaluate(model_dir)
  assert set(again) == set(estimator_cifar.api.RESULT_KEYS)
  assert len(str(again)) < 250, again  # The README prints it.


def test_predictor_on_arrays_and_files_agrees(trained, cifar10_dir, tmp_path):
  model_dir, metrics = trained
  records = np.fromfile(os.path.join(cifar10_dir, "cifar-10-batches-bin",
                                     "test_batch.bin"), np.uint8).reshape(-1, 3073)
  images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  labels = records[:, 0]
  predictor = estimator_cifar.Predictor(model_dir)
  out = predictor(images)
  assert out.class_names == list(fake.LABEL_NAMES_10)
  assert out.probabilities.shape == (50, 10)
  assert out.probabilities.dtype == np.float32
  np.testing.assert_allclose(out.probabilities.sum(axis=1), 1, rtol=1e-5)
  assert list(out.labels[:3]) == [fake.LABEL_NAMES_10[c] for c in out.classes[:3]]
  # The eval set through the same weights: the eval accuracy, exactly.
  assert np.mean(out.classes == labels) == pytest.approx(metrics["accuracy"])

  files = []
  for i in range(3):
    files.append(str(tmp_path / f"{i}.png"))
    tf.io.write_file(files[-1], tf.io.encode_png(images[i]))
  from_files = predictor.predict(files)
  np.testing.assert_allclose(from_files.probabilities, out.probabilities[:3],
                             atol=1e-5)
  single = predictor(images[0])
  assert single.probabilities.shape == (1, 10)


def test_predictor_rejects_float_images(trained):
  model_dir, _ = trained
  with pytest.raises(DataError, match=r"scaled to \[0, 1\]"):
    estimator_cifar.Predictor(model_dir)(np.zeros([2, 32, 32, 3], np.float32))


def test_train_takes_a_config_object_and_leaves_it_alone(tmp_path):
  cfg = config_lib.load_experiment("resnet_sgd")
  metrics = estimator_cifar.train(
      cfg, overrides=overrides(**{"data.name": "synthetic", "train.steps": 2,
                                  "data.synthetic_train_size": 32,
                                  "data.synthetic_eval_size": 50}),
      model_dir=str(tmp_path / "m"), mode="train")
  assert metrics == {"global_step": 2, "history": []}  # mode="train": no evals.
  assert cfg.model.name == "resnet" and cfg.train.steps == 0


def test_bad_mode_is_a_user_error(tmp_path):
  with pytest.raises(ConfigError, match="evaluate"):
    estimator_cifar.train("resnet_sgd", model_dir=str(tmp_path), mode="eval")


def test_progress_lines_reach_stderr_from_python(tmp_path):
  code = ("import estimator_cifar; estimator_cifar.train('resnet_sgd', "
          "overrides={'data.name': 'synthetic', 'model.name': 'tiny', "
          "'train.steps': 3, 'train.batch_size': 8, 'log.every_steps': 1, "
          "'data.synthetic_train_size': 32, 'data.synthetic_eval_size': 50, "
          "'eval.batch_size': 50, 'eval.export_best': False, "
          "'eval.export_latest': 0}, model_dir='run')")
  proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=subprocess_env(),
                        capture_output=True, text=True, timeout=seconds(300))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "step 3/3, loss = " in proc.stderr
  assert "Eval at step 3 on the test split: accuracy=" in proc.stderr
  assert "Done: resnet_sgd mode=train_and_eval step=3" in proc.stdout
