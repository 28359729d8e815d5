"""`<model_dir>/eval/metrics.jsonl`: one JSON line per evaluation.

Every evaluation (train_and_eval's periodic and final ones, --mode=eval, the
continuous-eval job, a cluster's evaluator) appends one line with at least
`global_step`, `accuracy`, `top_5_accuracy`, `loss` and `checkpoint`, so tools
and resumed jobs read one plain file instead of parsing event files.
"""

import json
import os
import time

from estimator_cifar import rundir


def path(model_dir: str) -> str:
  return os.path.join(model_dir, rundir.EVAL_DIR, rundir.METRICS_FILE)


def append(model_dir: str, eval_result: dict, checkpoint: str) -> dict:
  """Appends one row built from an Estimator eval result; returns the row."""
  row = plain_metrics(eval_result)
  row["global_step"] = int(row.get("global_step", -1))
  row["checkpoint"] = os.path.basename(checkpoint) if checkpoint else None
  row["time"] = time.time()
  os.makedirs(os.path.dirname(path(model_dir)), exist_ok=True)
  # One write() of one line: a reader never sees half a row from us.
  with open(path(model_dir), "a") as f:
    f.write(json.dumps(row, sort_keys=True) + "\n")
  return row


def read(model_dir: str) -> list[dict]:
  """All rows; a torn last line (a killed writer) is skipped."""
  rows = []
  if not os.path.exists(path(model_dir)):
    return rows
  with open(path(model_dir)) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return rows


def plain_metrics(eval_result: dict) -> dict:
  """An eval result as JSON-ready numbers and lists, without its summaries.

  Byte strings are serialized TensorBoard summaries (the confusion image and
  table): they belong in the eval events, not in a JSON log.
  """
  return {k: rundir.json_ready(v) for k, v in eval_result.items()
          if not isinstance(v, bytes)}


