"""Which split each evaluation scores, and scoring a checkpoint on a split.

With a validation split (`data.validation_size` > 0) every evaluation made
while training (train_and_eval's, `--mode=continuous_eval`'s, a cluster
evaluator's) scores the validation split, and `export/best` chooses by it;
the test split is scored once per run, on the final checkpoint (`test_once`),
and on demand (`--mode=eval --split=test`). Choosing a checkpoint or a
recipe by test accuracy would inflate the test figure that is then reported.
Without a validation split the evaluations score the test split, as they
always did.

The training-time split's summaries go to `<model_dir>/eval/` (Estimator's
eval name None, as before), the other split's to `<model_dir>/eval_<split>/`:
TensorBoard shows the two as separate runs. Every row of
`eval/metrics.jsonl` names its split.
"""

import os

import tensorflow as tf
from absl import logging

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data.input_pipeline import make_input_fn
from estimator_cifar.data.source import TEST, VALIDATION
from estimator_cifar.engine import temperatures
from estimator_cifar.engine.estimator_setup import Plan, make_estimator
from estimator_cifar.errors import ConfigError
from estimator_cifar.model import eval_metrics
from estimator_cifar.rundir import confusion_plot, metrics_log, reliability_plot

# Shown of each split in logs and the `Done:` line.
BRIEF_KEYS = ("accuracy", "top_5_accuracy", "loss", "ece")


def training_split(cfg: ExperimentConfig) -> str:
  """The split evaluations during training score (see the module docstring)."""
  return VALIDATION if cfg.data.validation_size > 0 else TEST


def eval_name(cfg: ExperimentConfig, split: str) -> str | None:
  """Estimator's eval name of `split`: None (`eval/`) for the training-time
  split, else the split's name (`eval_<split>/`)."""
  return None if split == training_split(cfg) else split


def check_split(cfg: ExperimentConfig, split: str, model_dir: str) -> None:
  """Refuses the validation split of a run that holds none out."""
  if split == VALIDATION and cfg.data.validation_size <= 0:
    raise ConfigError(
        f"--split=validation: {model_dir} has no validation split "
        "(data.validation_size=0), so its training used every training "
        "image. Score --split=test, or train a run that holds images out "
        "with --params_override=data.validation_size=N.")


def score(cfg: ExperimentConfig, model_dir: str, plan: Plan, split: str,
          checkpoint: str, hooks=()) -> dict:
  """Evaluates `checkpoint` on `split` with its temperature
  (engine/temperatures.py); appends the row and draws the plots.

  Returns:
    The eval result, with `split` (and `temperature` when calibrated).
  """
  temperature = temperatures.temperature_for(cfg, model_dir, checkpoint,
                                             plan.source)
  estimator = make_estimator(cfg, model_dir, plan, temperature=temperature,
                             training=False)
  result = estimator.evaluate(
      make_input_fn(cfg, plan.source, training=False, split=split),
      checkpoint_path=checkpoint, hooks=list(hooks),
      name=eval_name(cfg, split))
  if temperature != temperatures.UNCALIBRATED:
    result["temperature"] = temperature
  metrics_log.append(model_dir, result, checkpoint, split)
  result["split"] = split
  logging.info("Eval of %s on the %s split: %s", os.path.basename(checkpoint),
               split, brief(result))
  draw_plots(cfg, model_dir, result, plan.source.label_names)
  return result


def test_once(cfg: ExperimentConfig, model_dir: str, plan: Plan) -> dict | None:
  """Scores the final checkpoint on the test split, unless done before.

  Only runs with a validation split: without one, every evaluation scored
  the test split already. A resumed run that finds a test row for its final
  checkpoint returns that row instead of scoring again.

  Returns:
    The test result, or None (no validation split, or no checkpoint).
  """
  if training_split(cfg) == TEST:
    return None
  checkpoint = tf.train.latest_checkpoint(model_dir)
  if checkpoint is None:
    return None
  name = os.path.basename(checkpoint)
  scored = [row for row in metrics_log.rows_of(model_dir, TEST)
            if row.get("checkpoint") == name]
  if scored:
    logging.info("The test split was scored on %s before; not again.", name)
    return scored[-1]
  return score(cfg, model_dir, plan, TEST, checkpoint)


def draw_plots(cfg: ExperimentConfig, model_dir: str, result: dict,
               names) -> None:
  """eval/confusion.png and eval/reliability.png of one evaluation."""
  title = (f"{cfg.name} step {int(result.get('global_step', 0))}, "
           f"{result.get('split', TEST)} split: accuracy "
           f"{float(result.get('accuracy', 0)):.4f}")
  counts = result.get(eval_metrics.CONFUSION_KEY)
  if counts is not None:
    written = confusion_plot.write(model_dir, counts, list(names), title)
    if written:
      logging.info("Confusion matrix: %s", written)
  bins = result.get(eval_metrics.RELIABILITY_KEY)
  if bins is not None:
    raw = result.get(eval_metrics.RELIABILITY_KEY +
                     eval_metrics.UNCALIBRATED_SUFFIX)
    written = reliability_plot.write(model_dir, bins, raw, title)
    if written:
      logging.info("Reliability diagram: %s", written)


def brief(metrics: dict) -> str:
  """`accuracy=0.8000 top_5_accuracy=...` of an eval result."""
  return " ".join(f"{k}={float(metrics[k]):.4f}" for k in BRIEF_KEYS
                  if k in metrics)
