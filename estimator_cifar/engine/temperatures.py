"""The temperature a checkpoint's probabilities are returned with.

Temperature scaling (Guo et al. 2017) divides the logits by one number T,
fitted on the validation split's logits by NLL (model/temperature.py), so the
returned `probabilities` are softmax(logits / T); `logits` and `classes` do
not change. A temperature belongs to one checkpoint: each is fitted on that
checkpoint's logits and recorded under its name in
`<model_dir>/calibration.json` (rundir/calibration.py).

Every reader of a checkpoint (evaluation, `--mode=predict`, exports and with
them the Predictor) asks `temperature_for`: the recorded temperature if there
is one; else, under `eval.calibration=temperature`, one fitted now on the
validation split and recorded; else 1 (uncalibrated). The test split is never
fitted on. `--mode=calibrate` fits the newest checkpoint's on demand.
"""

import os
from typing import Callable

from absl import logging

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data.input_pipeline import make_input_fn
from estimator_cifar.data.source import VALIDATION, DataSource
from estimator_cifar.engine import calibrate
from estimator_cifar.engine.estimator_setup import serving_estimator
from estimator_cifar.errors import ConfigError
from estimator_cifar.rundir import calibration

UNCALIBRATED = 1.0


def temperature_for(
    cfg: ExperimentConfig, model_dir: str, checkpoint: str,
    source: DataSource | Callable[[], DataSource | None] | None) -> float:
  """The temperature `checkpoint`'s probabilities are returned with.

  `source`: the run's data, or a function that loads it (called only when a
  temperature is to be fitted), or None (no data).

  Raises:
    ConfigError: `eval.calibration=temperature`, none recorded for this
      checkpoint, and no validation split to fit one on (no data given).
  """
  recorded = calibration.temperature(model_dir, checkpoint)
  if recorded is not None:
    return recorded
  if cfg.eval.calibration != "temperature":
    return UNCALIBRATED
  if callable(source):
    source = source()
  if source is None or not source.num_validation:
    raise ConfigError(
        f"eval.calibration=temperature, but {model_dir} has no temperature "
        f"for {os.path.basename(checkpoint)} yet and no validation images "
        "were found to fit one. Pass --data_dir (the data the run trained "
        "on), or run --mode=calibrate with it first.")
  return fit(cfg, model_dir, checkpoint, source)["temperature"]


def fit(cfg: ExperimentConfig, model_dir: str, checkpoint: str,
        source: DataSource) -> dict:
  """Fits `checkpoint`'s temperature on the validation split and records it.

  Returns:
    The recorded figures: temperature, images, NLL and ECE before and after
    (on the validation images it was fitted on).

  Raises:
    ConfigError: the run has no validation split.
  """
  if not source.num_validation:
    raise ConfigError(
        f"{model_dir} has no validation split (data.validation_size=0), and "
        "a temperature is fitted on validation images only, never on the "
        "test split. Train a run that holds some out: "
        "--params_override=data.validation_size=5000 (500 of a few thousand "
        "images), then calibrate it.")
  estimator = serving_estimator(cfg, model_dir, source.num_classes)
  figures = calibrate.fit_checkpoint(
      estimator, make_input_fn(cfg, source, training=False, split=VALIDATION),
      calibrate.validation_labels(source), checkpoint)
  calibration.record(model_dir, checkpoint, figures["temperature"], figures)
  logging.info(
      "Calibrated %s on %d validation images: temperature %.3f; NLL %.4f -> "
      "%.4f, ECE %.4f -> %.4f.", os.path.basename(checkpoint),
      figures["images"], figures["temperature"], figures["nll_before"],
      figures["nll_after"], figures["ece_before"], figures["ece_after"])
  return figures
