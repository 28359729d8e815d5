"""The Python API: train, evaluate and predict from a script or a notebook.

  import estimator_cifar
  metrics = estimator_cifar.train("resnet_sgd", overrides={"train.steps": 100},
                                  model_dir="/tmp/run")
  estimator_cifar.evaluate("/tmp/run")
  predictor = estimator_cifar.Predictor("/tmp/run")
  predictor(images_uint8).labels           # or predictor(["cat.png"])

The same resolve path as the command line (experiment -> overrides ->
validation), the same model_dir contract, and the same `UserError`s (raised
here, not printed). Progress and eval lines reach stderr through absl logging
unless the program has configured logging itself.
"""

import copy
import logging as std_logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging

from estimator_cifar import config as config_lib
from estimator_cifar import console, experiment_files, paths, rundir
from estimator_cifar.errors import ConfigError
from estimator_cifar.engine import TRAIN_MODES
from estimator_cifar.predictor import Prediction, Predictor  # noqa: F401
from estimator_cifar.rundir import checkpoint_check, metrics_log, recorded

Overrides = Mapping[str, Any] | Sequence[str] | str | None

# What train() and evaluate() return of an eval: short, plain numbers. The
# per-class accuracies and the confusion matrix stay in eval/metrics.jsonl.
RESULT_KEYS = ("accuracy", "top_5_accuracy", "loss", "cross_entropy", "ece",
               "nll", "global_step", "split")
# Each of train()'s `history` rows: one evaluation.
HISTORY_KEYS = ("global_step", "split", "accuracy", "top_5_accuracy", "loss")


def train(experiment: str | config_lib.ExperimentConfig,
          overrides: Overrides = None, model_dir: str | None = None,
          data_dir: str | None = None, mode: str = "train_and_eval",
          warm_start_from: str | None = None,
          experiments_dir: str | None = None,
          allow_config_change: bool = False,
          resume_from_previous: bool = False) -> dict[str, Any]:
  """Trains an experiment, as `python -m estimator_cifar.run` does.

  Args:
    experiment: an experiment name, a path to an experiment file, or an
      ExperimentConfig (e.g. from `config.load_experiment`, then changed).
    overrides: `{"train.steps": 100}`, or strings as for --params_override
      (`["train.steps=100", "optimizer.learning_rate=0.05"]`).
    model_dir: where checkpoints, events and logs go; default
      `runs/<experiment>`. Training resumes from a checkpoint there.
    data_dir: where CIFAR lives or is downloaded to; default
      `~/.cache/estimator_cifar`.
    mode: "train_and_eval" or "train".
    warm_start_from: a checkpoint prefix or directory to initialize from.
    experiments_dir: another folder to look for experiment names in.
    allow_config_change: continue in a model_dir trained with another model.
    resume_from_previous: if the newest checkpoint is damaged, move it aside
      and resume from the newest complete one.

  Returns:
    The final eval's RESULT_KEYS (`accuracy`, `top_5_accuracy`, `loss`,
    `cross_entropy`, `ece`, `nll`, `global_step` as Python numbers, and
    `split`: with `data.validation_size` > 0 the test split's, scored once at
    the end, else the final evaluation's), only `global_step` for
    mode="train"; and `history`, one dict of HISTORY_KEYS per evaluation in
    the model_dir (from `eval/metrics.jsonl`, validation and test rows alike),
    oldest first.

  Raises:
    UserError subclasses for anything the caller can fix.
  """
  if mode not in TRAIN_MODES:
    raise ConfigError(f"train(mode={mode!r}): use one of "
                      f"{', '.join(TRAIN_MODES)}; evaluate() "
                      "evaluates.")
  _show_logs()
  if experiments_dir:
    experiment_files.add_dirs([experiments_dir])
  strings = override_strings(overrides)
  if isinstance(experiment, config_lib.ExperimentConfig):
    cfg = config_lib.validate(config_lib.apply_overrides(
        copy.deepcopy(experiment), strings))  # The caller's copy stays.
  else:
    cfg = config_lib.resolve(experiment, strings)
  model_dir = paths.expand(model_dir) or os.path.join("runs", cfg.name)
  checkpoint_check.check_writable(model_dir)
  from estimator_cifar.engine import modes  # TensorFlow: after the checks.
  result = modes.run(cfg, model_dir, mode, paths.expand(data_dir),
                     warm_start_from=paths.expand(warm_start_from),
                     allow_config_change=allow_config_change,
                     resume_from_previous=resume_from_previous)
  summary = _summary(result) or {"global_step": _newest_step(model_dir)}
  summary["history"] = [{k: row[k] for k in HISTORY_KEYS if k in row}
                        for row in metrics_log.read(model_dir)]
  return summary


def evaluate(model_dir: str, overrides: Overrides = None,
             data_dir: str | None = None,
             experiment: str | None = None,
             split: str = "test") -> dict[str, Any]:
  """Evaluates the newest checkpoint of a trained `model_dir` on `split`.

  Uses the config training recorded there (`config.json`), with `overrides`
  on top, and the data_dir training used unless `data_dir` is given; appends
  a row to `eval/metrics.jsonl` as `--mode=eval` does. `split`: "test", or
  "validation" for a run that held one out (`data.validation_size`).

  Returns:
    RESULT_KEYS as Python numbers; the per-class accuracies and the confusion
    matrix are in the row this appends to `eval/metrics.jsonl`.
  """
  _show_logs()
  model_dir = paths.expand(model_dir)
  cfg, data_dir = recorded.setup("eval", model_dir, experiment,
                                 override_strings(overrides),
                                 paths.expand(data_dir))
  from estimator_cifar.engine import modes
  return _summary(modes.run(cfg, model_dir, "eval", data_dir, split=split))


def override_strings(overrides: Overrides) -> list[str]:
  """`--params_override` strings from a dict, a list of strings or a string."""
  if not overrides:
    return []
  if isinstance(overrides, str):
    return [overrides]
  if isinstance(overrides, Mapping):
    return [f"{key}={_override_value(value)}" for key, value in overrides.items()]
  return [str(item) for item in overrides]


def _override_value(value: Any) -> str:
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, (list, tuple)):
    return "[" + ",".join(_override_value(v) for v in value) + "]"
  if isinstance(value, Mapping):
    return "{" + ",".join(f"{k}:{_override_value(v)}"
                          for k, v in value.items()) + "}"
  return str(value)


def _show_logs() -> None:
  """INFO lines to stderr when the calling program set up no logging itself."""
  if not std_logging.getLogger().handlers:
    logging.use_absl_handler()
    logging.set_verbosity(logging.INFO)
    console.quiet()  # As the CLI does: the package's lines, not TF's chatter.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # As the CLI does.


def _newest_step(model_dir: str) -> int:
  import tensorflow as tf
  return rundir.checkpoint_step(tf.train.latest_checkpoint(model_dir)) or 0


def _summary(metrics: dict) -> dict[str, Any]:
  """RESULT_KEYS of an Estimator eval result, as Python numbers (the split
  as its name)."""
  kinds = {"global_step": int, "split": str}
  return {key: kinds.get(key, float)(metrics[key]) for key in RESULT_KEYS
          if key in (metrics or {})}


# The Predictor (predictor.py) shows its lines the same way.
show_logs = _show_logs
