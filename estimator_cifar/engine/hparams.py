"""TensorBoard HParams: each train run's config and metrics, so runs compare.

At the start of a train run the chief writes, into the model_dir, the HParams
plugin's experiment summary (the metrics to show) and session-start summary
(every config field, flattened to `section.field`). The eval metrics
Estimator already writes under `eval/` fill the metric columns, so the runs
under one `tensorboard --logdir` (a sweep's root) line up in the HParams tab.

The summaries are protos written by TensorBoard's own event writer: a
`tf.summary` writer would start TensorFlow's eager context, after which
MultiWorkerMirroredStrategy can no longer configure its collective ops.
"""

import json
import time

from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import api as hp
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from estimator_cifar.config import ExperimentConfig
from estimator_cifar import rundir

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
  metrics = [hp.Metric(tag, group=rundir.EVAL_DIR, display_name=name)
             for tag, name in METRICS]
  summaries = (
      hp.hparams_config_pb(hparams=[hp.HParam(name) for name in values],
                           metrics=metrics),
      hp.hparams_pb(values))
  writer = EventFileWriter(model_dir, filename_suffix=".hparams")
  try:
    for summary in summaries:
      writer.add_event(event_pb2.Event(wall_time=time.time(), summary=summary))
  finally:
    writer.close()
