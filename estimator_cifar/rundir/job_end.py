"""When a cluster's job is over, told through files in the shared model_dir.

A parameter server serves variables and never learns from TensorFlow that
training ended, and an evaluator only sees checkpoints. Both read two facts the
trainers leave in the model_dir:

  run_info.json            the chief's run record (run_record.py); its status
                           turns "finished" (or "stopped_nan") when the chief
                           is done.
  tasks/<role>-<index>.done  one per worker that finished training, naming the
                           chief run it finished (the record's `start_time`).

A record that had already ended when a task started watching belongs to an
earlier run in the same model_dir (a resumed run with more steps) and is not
taken for the end of this one. TF-free, so a ps need not build a model.
"""

import json
import os
import time

from estimator_cifar.rundir import run_record

TASKS_DIR = "tasks"
# Chief statuses after which nobody trains on: a preempted or interrupted
# chief is expected back, so the job goes on.
ENDED = (run_record.FINISHED, run_record.STOPPED_NAN)


def done_path(model_dir: str, role: str, index: int) -> str:
  return os.path.join(model_dir, TASKS_DIR, f"{role}-{index}.done")


class ChiefWatch:
  """Says when the chief's run in `model_dir` has ended (see module docstring)."""

  def __init__(self, model_dir: str):
    self._model_dir = model_dir
    record = run_record.read(model_dir) or {}
    self._stale = record.get("start_time") if record.get("status") in ENDED \
        else None

  def ended(self) -> dict | None:
    """The chief's record once this run has ended, else None."""
    record = run_record.read(self._model_dir)
    if record and record.get("status") in ENDED and \
        record.get("start_time") != self._stale:
      return record
    return None


def ended_at_step(model_dir: str) -> int | None:
  """The final step of the chief's run in `model_dir` if it has ended, else None.

  Any ended run counts, an earlier one too: its final checkpoint is then the
  newest one, and nobody trains past it.
  """
  record = run_record.read(model_dir) or {}
  return record.get("final_step") if record.get("status") in ENDED else None


def mark_done(model_dir: str, role: str, index: int) -> None:
  """Records that this training task finished the chief's current run."""
  record = run_record.read(model_dir) or {}
  path = done_path(model_dir, role, index)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump({"chief_start_time": record.get("start_time"),
               "time": time.time()}, f)
  os.replace(tmp, path)


def is_done(model_dir: str, role: str, index: int, chief_start_time) -> bool:
  """Whether `role:index` marked the chief run that started then as finished."""
  try:
    with open(done_path(model_dir, role, index), encoding="utf-8") as f:
      mark = json.load(f)
  except (OSError, ValueError):
    return False
  return isinstance(mark, dict) and \
      mark.get("chief_start_time") == chief_start_time
