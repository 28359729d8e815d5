"""Tabulates every run under a directory, best accuracy first.

Usage (from the repository root):

  python -m tools.results_table runs/                  # Markdown to stdout
  python -m tools.results_table runs/ --format=csv --out results.csv

One row per model_dir found under RUNS_DIR (see `run_records.find_runs`):
run (path relative to RUNS_DIR), experiment, final step, best and final eval
accuracy, and wall time. Markdown shows accuracy in percent for pasting into a
README; CSV keeps plain fractions and seconds so that it can be read back.
"""

import csv
import io
import math
import os
import sys
from typing import Any, Optional, Sequence

if not __package__:  # Run as a file: the relative imports below need -m.
  print("error: run it as python -m tools.results_table from the repository root"
        " (python -m estimator_cifar.tools.results_table once installed)", file=sys.stderr)
  sys.exit(2)

from absl import app, flags, logging

from estimator_cifar import paths
from . import cli, run_records

FORMATS = ("markdown", "csv")
MISSING = "-"

# (key in a row, Markdown header)
_COLUMNS = (
    ("run", "run"),
    ("experiment", "experiment"),
    ("final_step", "final step"),
    ("best_accuracy", "best acc"),
    ("final_accuracy", "final acc"),
    ("wall_time_s", "wall time"),
)
# CSV headers are the row keys, plus the human wall time last.
_CSV_COLUMNS = ("run", "experiment", "final_step", "best_accuracy",
                "final_accuracy", "wall_time_s", "wall_time")
_NUMERIC = {"final_step", "best_accuracy", "final_accuracy", "wall_time_s"}


def format_duration(seconds: Optional[float]) -> str:
  """Human wall time: 45s, 12m03s, 3h07m09s; `MISSING` if unknown."""
  if seconds is None or not math.isfinite(seconds) or seconds < 0:
    return MISSING
  total = int(round(seconds))
  hours, rest = divmod(total, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return f"{hours}h{minutes:02d}m{secs:02d}s"
  if minutes:
    return f"{minutes}m{secs:02d}s"
  return f"{secs}s"


def results_rows(root: str) -> list[dict[str, Any]]:
  """Summarizes every run under `root`, best accuracy first.

  Args:
    root: a directory of model_dirs (or one model_dir).

  Returns:
    One dict per run with the keys of `run_records.run_summary` plus `run`,
    the model_dir relative to `root` (its base name if `root` is the run).
    Sorted by best accuracy, descending; runs never evaluated come last, and
    ties go by run name so the order is stable.

  Raises:
    run_records.NoRunsError: if no run is found.
  """
  model_dirs = run_records.find_runs(root)
  if not model_dirs:
    raise run_records.NoRunsError(
        f"no run found under {root} (a run holds config.json, event files or "
        "eval/metrics.jsonl)")
  rows = []
  for model_dir in model_dirs:
    row = run_records.run_summary(model_dir)
    run = os.path.relpath(model_dir, root)
    row["run"] = (os.path.basename(os.path.normpath(os.path.abspath(root)))
                  if run == "." else run)
    rows.append(row)

  def order(row):
    best = row["best_accuracy"]
    return (best is None, -(best or 0.0), row["run"])

  return sorted(rows, key=order)


def _markdown_cell(key: str, value: Any) -> str:
  """One Markdown cell: accuracy in percent, wall time for humans."""
  if key == "wall_time_s":
    return format_duration(value)
  if value is None:
    return MISSING
  if key in ("best_accuracy", "final_accuracy"):
    return f"{100.0 * value:.2f}%"
  return str(value).replace("|", r"\|")  # A pipe would split the cell.


def _csv_cell(key: str, value: Any) -> str:
  """One CSV cell: machine-readable, empty when unknown."""
  if value is None:
    return ""
  if key == "wall_time_s":
    return f"{value:.1f}"
  if isinstance(value, float):
    return repr(value)  # Round-trips exactly through float().
  return str(value)


def format_table(rows: Sequence[dict[str, Any]], fmt: str = "markdown") -> str:
  """Renders `results_rows` output as a Markdown table or CSV.

  Args:
    rows: dicts with the keys of `results_rows`.
    fmt: "markdown" (percent, human wall time, padded columns) or "csv"
      (columns named like the row keys: accuracy as fractions, `wall_time_s`
      in seconds, then the human `wall_time`; unknown values are empty).

  Returns:
    The table as text, ending with a newline.

  Raises:
    ValueError: for an unknown `fmt`.
  """
  if fmt == "csv":
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for row in rows:
      cells = [_csv_cell(key, row.get(key)) for key in _CSV_COLUMNS[:-1]]
      writer.writerow(cells + [format_duration(row.get("wall_time_s"))])
    return out.getvalue()
  if fmt != "markdown":
    raise ValueError(
        f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")

  header = [title for _, title in _COLUMNS]
  cells = [[_markdown_cell(key, row.get(key)) for key, _ in _COLUMNS]
           for row in rows]
  widths = [max(len(line[i]) for line in [header] + cells)
            for i in range(len(header))]
  right = [key in _NUMERIC for key, _ in _COLUMNS]

  def line(values):
    padded = [v.rjust(w) if r else v.ljust(w)
              for v, w, r in zip(values, widths, right)]
    return "| " + " | ".join(padded) + " |"

  rule = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2))
                        for w, r in zip(widths, right)) + "|"
  return "\n".join([line(header), rule] + [line(c) for c in cells]) + "\n"


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the CLI flags.

  Only called when run as a script: plot_curves also has an --out flag, and
  tests import both modules into one process.
  """
  flags.DEFINE_enum("format", "markdown", FORMATS, "Output format.")
  flags.DEFINE_string("out", None, "File to write; stdout if unset.")


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    cli.exit_error("give exactly one RUNS_DIR: python -m tools.results_table DIR")
  root = paths.expand(argv[1])
  if not os.path.isdir(root):
    cli.exit_error(f"{root} is not a directory: give the folder that holds the runs")
  try:
    rows = results_rows(root)
  except run_records.NoRunsError as e:
    cli.exit_error(str(e))
  text = format_table(rows, FLAGS.format)
  if FLAGS.out:
    out = paths.expand(FLAGS.out)
    with open(out, "w", encoding="utf-8", newline="") as f:
      f.write(text)
    logging.info("wrote %d row%s to %s", len(rows),
                 "" if len(rows) == 1 else "s", out)
  else:
    sys.stdout.write(text)


if __name__ == "__main__":
  define_flags()
  app.run(main)
