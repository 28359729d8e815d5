"""The figures a run reports, read from its `eval/metrics.jsonl` by split.

A run with a validation split scores it at every training-time evaluation
(one row per checkpoint) and scores the test split once, on its final
checkpoint; a run without one scores the test split every time
(engine/scoring.py). So a run has two kinds of figure:

- selection figures (best accuracy, its step, final accuracy) from the
  training-time split's rows only: what a checkpoint or a recipe is chosen
  by, never mixed with test rows scored at the same step;
- test-once figures (accuracy, ECE) from the test row of a run that chose on
  validation: the figure to publish. A run without a validation split has
  none: its selection figures are test figures already.
"""

import math
from typing import Any, Optional

from absl import logging

from estimator_cifar.model.keys import ECE_KEY, UNCALIBRATED_SUFFIX
from estimator_cifar.rundir import metrics_log

# A series is a list of (step, value) pairs sorted by step.
Series = list[tuple[int, float]]

# Test-once figure -> its key in a metrics row (model/keys.py).
TEST_FIGURES = {"test_accuracy": "accuracy", "test_ece": ECE_KEY,
                "test_ece_uncalibrated": ECE_KEY + UNCALIBRATED_SUFFIX}


def read_rows(model_dir: str) -> list[dict[str, Any]]:
  """The rows of `eval/metrics.jsonl` with an integer step and a split name.

  Args:
    model_dir: the run's model_dir.

  Returns:
    The rows in file order. A missing or unreadable file gives an empty list;
    a line that is not a row (usually an append an evaluator still has in
    flight) is skipped by `metrics_log.read`, with a warning.
  """
  try:
    rows = metrics_log.read(model_dir)
  except OSError as e:
    logging.warning("%s: cannot read (%s); skipping it",
                    metrics_log.path(model_dir), e)
    return []
  kept = [row for row in rows if isinstance(row.get("global_step"), int)
          and isinstance(metrics_log.split_of(row), str)]
  if len(kept) < len(rows):
    logging.warning("%s: skipped %d row(s) without an integer global_step "
                    "or a split name", metrics_log.path(model_dir),
                    len(rows) - len(kept))
  return kept


def metrics_series(rows: list[dict[str, Any]], key: str) -> Series:
  """The (step, value) series of `key` in metrics rows; at one step the
  later row wins."""
  points = {}
  for row in rows:
    value = number(row.get(key))
    if value is not None:
      points[row["global_step"]] = value
  return sorted(points.items())


def split_series(rows: list[dict[str, Any]], key: str) -> dict[str, Series]:
  """`metrics_series` of `key` per split that has it, the training-time
  split first."""
  chosen = metrics_log.selection_split(rows)
  splits = sorted({metrics_log.split_of(row) for row in rows},
                  key=lambda split: (split != chosen, split))
  by_split = {split: metrics_series(
      [row for row in rows if metrics_log.split_of(row) == split], key)
              for split in splits}
  return {split: series for split, series in by_split.items() if series}


def selection_figures(accuracy: Series) -> dict[str, Optional[float]]:
  """`best_accuracy`, `best_step` and `final_accuracy` of the training-time
  split's accuracy series (None where it is empty)."""
  best_step, best_accuracy = None, None
  finite = [(s, v) for s, v in accuracy if math.isfinite(v)]
  if finite:
    # On ties keep the earliest step: it reached that accuracy first.
    best_step, best_accuracy = max(finite, key=lambda p: (p[1], -p[0]))
  return {"best_accuracy": best_accuracy, "best_step": best_step,
          "final_accuracy": accuracy[-1][1] if accuracy else None}


def test_once_figures(rows: list[dict[str, Any]]
                      ) -> dict[str, Optional[float]]:
  """`TEST_FIGURES` of a run that chose on validation, else None each.

  The figures come from its test row at the largest step (the final
  checkpoint's; of several, such as a later `--mode=eval` of it, the last).
  """
  tests = [row for row in rows if metrics_log.split_of(row) == metrics_log.TEST]
  row = {}
  if tests and metrics_log.selection_split(rows) != metrics_log.TEST:
    row = max(reversed(tests), key=lambda r: r["global_step"])
  return {figure: number(row.get(key)) for figure, key in TEST_FIGURES.items()}


def number(value: Any) -> Optional[float]:
  """`value` as a float if it is a number (not a bool), else None."""
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    return float(value)
  return None
