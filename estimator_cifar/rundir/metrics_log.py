"""`<model_dir>/eval/metrics.jsonl`: one JSON line per evaluation.

Every evaluation (train_and_eval's periodic and final ones, --mode=eval, the
continuous-eval job, a cluster's evaluator) appends one line with at least
`global_step`, `accuracy`, `top_5_accuracy`, `loss`, `checkpoint` and `split`
(`validation` or `test`: the images it scored), so tools and resumed jobs read
one plain file instead of parsing event files. Rows written before splits
existed have no `split`: they scored the test split.

The log stays whole: a last line without its newline (a writer killed
mid-append, a copy cut short) is moved into `metrics.jsonl.torn-<n>` before
the next append, which would otherwise glue its row onto it and lose both to
every reader; `read` skips any line that is not a row, with one warning.
"""

import json
import os
import time

from absl import logging

from estimator_cifar import rundir
from estimator_cifar.data.source import TEST, VALIDATION  # The splits rows name.

TORN_SUFFIX = ".torn-"  # metrics.jsonl.torn-1, -2, ...: torn lines moved aside.


def path(model_dir: str) -> str:
  return os.path.join(model_dir, rundir.EVAL_DIR, rundir.METRICS_FILE)


def append(model_dir: str, eval_result: dict, checkpoint: str,
           split: str) -> dict:
  """Appends one row built from an Estimator eval result of `split`; returns
  the row."""
  row = plain_metrics(eval_result)
  row["split"] = split
  row["global_step"] = int(row.get("global_step", -1))
  row["checkpoint"] = os.path.basename(checkpoint) if checkpoint else None
  row["time"] = time.time()
  os.makedirs(os.path.dirname(path(model_dir)), exist_ok=True)
  set_aside_torn_line(path(model_dir))
  # One write() of one line: a reader never sees half a row from us.
  with open(path(model_dir), "a") as f:
    f.write(json.dumps(row, sort_keys=True) + "\n")
  return row


def set_aside_torn_line(log_path: str) -> str | None:
  """Moves a last line that lacks its newline into `<log_path>.torn-<n>`.

  The bytes are written there (and synced) before the log is cut, so nothing
  is lost if this is interrupted too.

  Returns:
    The file the torn line went to, or None when the log ends whole.
  """
  try:
    with open(log_path, "rb+") as log:
      # The last byte settles it: no reading a long log on every append.
      if log.seek(0, os.SEEK_END) == 0:
        return None
      log.seek(-1, os.SEEK_END)
      if log.read(1) == b"\n":
        return None
      log.seek(0)
      data = log.read()
      start = data.rfind(b"\n") + 1
      aside = _new_file(log_path + TORN_SUFFIX, data[start:])
      log.truncate(start)
  except FileNotFoundError:
    return None
  logging.warning("%s ended in a torn line (%d bytes, no newline): moved it "
                  "into %s before appending.", log_path, len(data) - start,
                  aside)
  return aside


def _new_file(stem: str, data: bytes) -> str:
  """Writes `data` to the first of `stem`1, `stem`2, ... that does not exist."""
  number = 1
  while True:
    try:
      with open(f"{stem}{number}", "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
      return f"{stem}{number}"
    except FileExistsError:
      number += 1


def read(model_dir: str) -> list[dict]:
  """All rows in file order.

  A line that is not a JSON object (a torn append in flight, garbage in a
  model_dir from elsewhere) is skipped, with one warning naming the lines.
  """
  try:
    with open(path(model_dir), encoding="utf-8", errors="replace") as f:
      parsed = [(number, _row(line)) for number, line in enumerate(f, start=1)
                if line.strip()]
  except FileNotFoundError:
    return []
  bad = [number for number, row in parsed if row is None]
  if bad:
    shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
    logging.warning("%s: skipped %d line(s) that are not JSON rows (line %s).",
                    path(model_dir), len(bad), shown)
  return [row for _, row in parsed if row is not None]


def _row(line: str) -> dict | None:
  """The JSON object on `line`, or None if it holds none."""
  try:
    row = json.loads(line)
  except ValueError:
    return None
  return row if isinstance(row, dict) else None


def plain_metrics(eval_result: dict) -> dict:
  """An eval result as JSON-ready numbers and lists, without its summaries.

  Byte strings are serialized TensorBoard summaries (the confusion image and
  table): they belong in the eval events, not in a JSON log.
  """
  return {k: rundir.json_ready(v) for k, v in eval_result.items()
          if not isinstance(v, bytes)}


def split_of(row: dict) -> str:
  """The split a row scored (rows from before splits: the test split)."""
  return row.get("split", TEST)


def selection_split(rows: list[dict]) -> str:
  """The split a run's training-time evaluations scored, told by its rows.

  Validation where any row scored it: a run that holds images out evaluates
  them while training and the test split only once (engine/scoring.py).
  Else test, for runs without a validation split and runs from before splits.
  """
  return VALIDATION if any(split_of(row) == VALIDATION for row in rows) else TEST


def rows_of(model_dir: str, split: str) -> list[dict]:
  """The rows of `split`, in file order."""
  return [row for row in read(model_dir) if split_of(row) == split]
