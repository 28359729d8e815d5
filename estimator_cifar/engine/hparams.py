"""TensorBoard HParams: each train run's config and metrics, so runs compare.

At the start of a train run the chief writes, into the model_dir, the HParams
plugin's experiment summary (the metrics to show) and session-start summary
(every config field, flattened to `section.field`). The eval metrics
Estimator already writes under `eval/` fill the metric columns, so the runs
under one `tensorboard --logdir` (a sweep's root) line up in the HParams tab.
"""

import json

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.rundir import metrics_log

# (tag, display name): Estimator's eval summaries, in model_dir/eval.
METRICS = (("accuracy", "eval accuracy"), ("top_5_accuracy", "eval top-5"),
           ("loss", "eval loss"))
# Free text: long, and the same as the experiment's name says.
SKIPPED = ("description",)


def flatten(cfg: ExperimentConfig) -> dict[str, bool | int | float | str]:
  """`section.field` -> value; lists and maps as JSON text (HParams takes
  only numbers, booleans and strings)."""
  flat = {}
  for key, value in cfg.to_dict().items():
    if key in SKIPPED:
      continue
    items = value.items() if isinstance(value, dict) else [(None, value)]
    for field, item in items:
      name = f"{key}.{field}" if field else key
      flat[name] = item if isinstance(item, (bool, int, float, str)) else \
          json.dumps(item, sort_keys=True)
  return flat


def write(cfg: ExperimentConfig, model_dir: str) -> None:
  """Writes the experiment and session-start summaries into `model_dir`."""
  values = flatten(cfg)
  metrics = [hp.Metric(tag, group=metrics_log.EVAL_DIR, display_name=name)
             for tag, name in METRICS]
  writer = tf.summary.create_file_writer(model_dir)
  try:
    with writer.as_default():
      hp.hparams_config(hparams=[hp.HParam(name) for name in values],
                        metrics=metrics)
      hp.hparams(values)
  finally:
    writer.close()
