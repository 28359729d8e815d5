"""The model_dir contract: what a run writes there and reads back (TF-free).

A model_dir holds, beside TensorFlow's own event files:

  config.json               the resolved experiment config (`write_config`)
  label_names.txt           class names, one a line (rundir/identity.py)
  validation_split.json     the images held out to validate on (rundir/data_split.py)
  run_info.json             what ran and how it ended (rundir/run_record.py)
  eval/metrics.jsonl        one JSON line per evaluation (rundir/metrics_log.py)
  eval/confusion.png        the confusion matrix of --mode=eval and the test
                            split's score (rundir/confusion_plot.py)
  eval/reliability.png      their reliability diagram (rundir/reliability_plot.py)
  eval_test/                the test split's events, in a run with a validation
                            split (engine/scoring.py)
  calibration.json          each checkpoint's fitted temperature (rundir/calibration.py)
  checkpoint                TensorFlow's checkpoint state file
  model.ckpt-<step>.*       Estimator's checkpoints
  damaged_checkpoints/      checkpoints moved aside (rundir/checkpoint_check.py)
  tasks/worker-<i>.done     a cluster's finished workers (rundir/job_end.py)
  locks/<role>.lock         the process writing as each role (rundir/lock.py)
  sweep.log                 a sweep point's runs' output (tools/sweep.py)

This module owns those names and the few facts every reader needs: the step
in a checkpoint's name, which task of a cluster owns the model_dir, and the
config.json I/O. It imports neither TensorFlow nor the config module, so tools
can read a model_dir in a fraction of a second.
"""

import fnmatch
import json
import os
import re
from typing import Any, Collection

CONFIG_FILE = "config.json"
LABELS_FILE = "label_names.txt"
RUN_INFO_FILE = "run_info.json"
EVAL_DIR = "eval"
METRICS_FILE = "metrics.jsonl"
STATE_FILE = "checkpoint"            # TensorFlow's checkpoint state file.
CHECKPOINT_BASENAME = "model.ckpt"   # As Estimator's CheckpointSaverHook names them.
CHECKPOINT_INDEX_GLOB = CHECKPOINT_BASENAME + "-*.index"
DAMAGED_DIR = "damaged_checkpoints"
LOCK_DIR = "locks"
SWEEP_LOG_FILE = "sweep.log"  # Written before its first run starts.
# Any of these makes a folder a run (or one being started) to write into.
RUN_MARKERS = (CONFIG_FILE, RUN_INFO_FILE, STATE_FILE, LOCK_DIR, SWEEP_LOG_FILE)

# Tasks of a TF_CONFIG cluster that own the model_dir when present.
CHIEF_ROLES = ("chief", "master")

_STEP = re.compile(r"-(\d+)$")
_STATE_LINE = re.compile(r'^model_checkpoint_path:\s*"(.*)"', re.MULTILINE)


def checkpoint_step(path: str | None) -> int | None:
  """The global step in a checkpoint prefix (`.../model.ckpt-1200` -> 1200).

  None for None or a name without a trailing `-<digits>`.
  """
  match = _STEP.search(path) if path else None
  return int(match.group(1)) if match else None


def state_checkpoint(model_dir: str) -> str | None:
  """The newest checkpoint named by the state file, read without TensorFlow.

  Returns the name as written (relative names are relative to model_dir), or
  None when there is no readable state file naming one.
  """
  try:
    with open(os.path.join(model_dir, STATE_FILE), encoding="utf-8") as f:
      match = _STATE_LINE.search(f.read())
  except OSError:
    return None
  return match.group(1) if match else None


def holds_run(entries: Collection[str]) -> bool:
  """Whether a folder with these entries holds a run: a run file or checkpoint."""
  return any(name in RUN_MARKERS or fnmatch.fnmatch(name, CHECKPOINT_INDEX_GLOB)
             for name in entries)


def is_chief(task_type: str | None, task_index: int = 0,
             roles: Collection[str] = ()) -> bool:
  """Whether a task owns the model_dir: writes checkpoints and run files.

  Estimator's rule: the chief (or master); in a cluster without one, worker 0
  (as MultiWorkerMirroredStrategy does); a process outside any cluster
  (`task_type` None) runs alone and owns it.

  Args:
    task_type: this task's role in TF_CONFIG, or None without a cluster.
    task_index: its index within the role.
    roles: the cluster's roles that list at least one task.
  """
  if not task_type or task_type in CHIEF_ROLES:
    return True
  return (task_type == "worker" and task_index == 0 and
          not any(role in roles for role in CHIEF_ROLES))


def config_path(model_dir: str) -> str:
  return os.path.join(model_dir, CONFIG_FILE)


def read_config(model_dir: str) -> dict[str, Any] | None:
  """The config.json of `model_dir` as a dict; None if there is none.

  Raises:
    OSError, ValueError: the file is there but unreadable, or not a JSON
      object (each caller says what that means for it).
  """
  path = config_path(model_dir)
  if not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    values = json.load(f)
  if not isinstance(values, dict):
    raise ValueError("not a JSON object")
  return values


def write_config(model_dir: str, config_json: str) -> None:
  """Writes `config_json` to <model_dir>/config.json atomically."""
  os.makedirs(model_dir, exist_ok=True)
  write_atomically(config_path(model_dir), config_json + "\n")


def write_atomically(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file: a reader (or a run
  killed meanwhile) sees the old file or the new one, never half of one."""
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(tmp, path)


def json_ready(value: Any) -> Any:
  """JSON-friendly numbers, strings and lists from numpy/bytes values."""
  if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
    value = value.item()
  elif hasattr(value, "tolist"):  # A numpy array.
    value = value.tolist()
  if isinstance(value, bytes):
    return value.decode(errors="replace")
  if isinstance(value, (bool, int, float, str)) or value is None:
    return value
  if isinstance(value, (list, tuple)):
    return [json_ready(v) for v in value]
  return str(value)
