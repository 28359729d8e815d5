"""TensorBoard HParams: each train run's config, so the runs of a sweep compare.

At the start of a train run the chief writes, into the model_dir, the HParams
plugin's session-start summary: every config field, flattened to
`section.field`. The eval metrics Estimator already writes under `eval/` fill
the metric columns, so the runs under one `tensorboard --logdir` (a sweep's
root) line up in the HParams tab:

  - no run writes an experiment summary, so TensorBoard builds the columns
    from all the runs' values: the fields that differ between runs (a sweep's
    grid keys) come first, and `accuracy` leads the metrics (sorted by name);
  - each row is named after its run's folder: the summary names no session
    group, so runs with identical configs stay apart instead of merging
    under a hash of their values.

The summaries are protos written by TensorBoard's own event writer: a
`tf.summary` writer would start TensorFlow's eager context, after which
MultiWorkerMirroredStrategy can no longer configure its collective ops.
"""

import json
import time

from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from estimator_cifar.config import ExperimentConfig

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


def session_start(cfg: ExperimentConfig):
  """The session-start summary of `cfg`, in no session group (module docstring)."""
  summary = hp.hparams_pb(flatten(cfg))
  plugin_data = summary.value[0].metadata.plugin_data
  data = plugin_data_pb2.HParamsPluginData.FromString(plugin_data.content)
  data.session_start_info.group_name = ""  # hparams_pb sets a hash of the values.
  plugin_data.content = data.SerializeToString()
  return summary


def write(cfg: ExperimentConfig, model_dir: str) -> None:
  """Writes the session-start summary of `cfg` into `model_dir`."""
  writer = EventFileWriter(model_dir, filename_suffix=".hparams")
  try:
    writer.add_event(event_pb2.Event(wall_time=time.time(),
                                     summary=session_start(cfg)))
  finally:
    writer.close()
