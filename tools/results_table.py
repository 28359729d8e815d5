"""Tabulates every run under a directory, best accuracy first.

Usage (from the repository root):

  python -m tools.results_table runs/                  # Markdown to stdout
  python -m tools.results_table runs/ --format=csv --out results.csv
  python -m tools.results_table runs/ --fields=optimizer.learning_rate,train.seed

One row per model_dir found under RUNS_DIR (see `run_records.find_runs`):
run (path relative to RUNS_DIR), the value of each `--fields` config key in
the run's config.json, experiment, final step, best and final accuracy on the
split the run evaluated while training, the test split's accuracy and ECE
where a run with a validation split scored it once at the end, and wall time.
The headers name that split: "best val acc" where every run chose on a
validation split, "best acc" where they scored the test split all along, and
a "chosen on" column where runs differ (CSV always has `selection_split`).
Runs are ordered by the best accuracy they chose on, never by test accuracy.
Markdown shows accuracy and ECE in percent for pasting into a README; CSV
keeps plain fractions and seconds so that it can be read back. With
`train.seed` among the fields, a second Markdown table summarises the runs
that differ only in their seed: their count and the median, mean and
standard deviation of their best accuracy and, where they have one, of their
test accuracy and ECE.
"""

import csv
import io
import json
import math
import os
import statistics
import sys
from typing import Any, Optional, Sequence

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.results_table", file=sys.stderr)
  sys.exit(2)

from absl import app, flags, logging

from estimator_cifar import paths
from estimator_cifar.rundir import metrics_log
from . import cli, run_figures, run_records

FORMATS = ("markdown", "csv")
MISSING = "-"
SEED_KEY = "train.seed"  # Runs that differ only in it are one recipe's noise.

# In headers, the split the best and final accuracy come from: "val" where
# every run chose on a validation split; nothing where all scored test.
SPLIT_WORDS = {metrics_log.VALIDATION: "val ", metrics_log.TEST: ""}
SPLIT_TITLE = "chosen on"  # Markdown header of selection_split.
# Markdown headers of the test-once figures, shown when some run has them.
TEST_TITLES = {"test_accuracy": "test acc", "test_ece": "test ece",
               "test_ece_uncalibrated": "test ece uncal"}
# Figures over seeds: the one runs were chosen by, then the test-once ones.
SPREAD_FIGURES = ("best_accuracy", "test_accuracy", "test_ece")
HUMAN_WALL_TIME = "wall_time"  # CSV's last column, after wall_time_s.
_PERCENT = {"best_accuracy", "final_accuracy", *run_figures.TEST_FIGURES}
_NUMERIC = {"final_step", "wall_time_s", *_PERCENT}


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


def config_field(config: Optional[dict[str, Any]], key: str) -> Any:
  """The value of dotted `key` (`train.seed`) in a config.json dict, else None."""
  value: Any = config
  for part in key.split("."):
    if not isinstance(value, dict):
      return None
    value = value.get(part)
  return value


def results_rows(root: str, fields: Sequence[str] = ()) -> list[dict[str, Any]]:
  """Summarizes every run under `root`, best accuracy first.

  Args:
    root: a directory of model_dirs (or one model_dir).
    fields: dotted config keys whose values each row carries, e.g. a sweep's
      grid keys.

  Returns:
    One dict per run with the keys of `run_records.run_summary`, `run` (the
    model_dir relative to `root`, its base name if `root` is the run) and
    each of `fields` (None where the run's config.json lacks it).
    Sorted by best accuracy on the split each run chose on (never by test
    accuracy), descending; runs never evaluated come last, and ties go by
    run name so the order is stable.

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
    if fields:  # config.json is read only for the columns it feeds.
      config = run_records.read_config(model_dir)
      row.update((key, config_field(config, key)) for key in fields)
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
  if key in _PERCENT:
    return f"{100.0 * value:.2f}%"
  if isinstance(value, (list, dict)):
    value = json.dumps(value)
  return str(value).replace("|", r"\|")  # A pipe would split the cell.


def _csv_cell(key: str, value: Any) -> str:
  """One CSV cell: machine-readable, empty when unknown."""
  if value is None:
    return ""
  if key == "wall_time_s":
    return f"{value:.1f}"
  if isinstance(value, float):
    return repr(value)  # Round-trips exactly through float().
  if isinstance(value, (list, dict)):
    return json.dumps(value)
  return str(value)


def seed_summary(rows: Sequence[dict[str, Any]], fields: Sequence[str]
                 ) -> list[dict[str, Any]]:
  """One row per combination of the non-seed `fields`: its runs' spread.

  Returns:
    Dicts with those fields and, for each of SPREAD_FIGURES (the best
    accuracy the runs were chosen by, and the test-once accuracy and ECE of
    runs with a validation split), a dict of `runs` (the runs that have the
    figure) and the `median`, `mean` and `std` (sample standard deviation;
    None below 2 runs) of the figure over them. Best median of the chosen
    figure first. Empty unless SEED_KEY is in `fields`.
  """
  if SEED_KEY not in fields:
    return []
  others = [key for key in fields if key != SEED_KEY]
  groups: dict[str, list[dict[str, Any]]] = {}
  for row in rows:
    groups.setdefault(json.dumps([row.get(key) for key in others]),
                      []).append(row)
  summary = [dict({key: runs[0].get(key) for key in others},
                  **{figure: _spread([run[figure] for run in runs
                                      if run.get(figure) is not None])
                     for figure in SPREAD_FIGURES})
             for runs in groups.values()]
  return sorted(summary, key=lambda r: (r["best_accuracy"]["median"] is None,
                                        -(r["best_accuracy"]["median"] or 0)))


def _spread(values: Sequence[float]) -> dict[str, Any]:
  """`runs`, `median`, `mean` and `std` of `values` (None where undefined)."""
  return {"runs": len(values),
          "median": statistics.median(values) if values else None,
          "mean": statistics.mean(values) if values else None,
          "std": statistics.stdev(values) if len(values) > 1 else None}


def _markdown(header: Sequence[str], cells: Sequence[Sequence[str]],
              right: Sequence[bool]) -> str:
  """A padded Markdown table; `right` marks the right-aligned columns."""
  widths = [max(len(line[i]) for line in [header] + list(cells))
            for i in range(len(header))]

  def line(values):
    padded = [v.rjust(w) if r else v.ljust(w)
              for v, w, r in zip(values, widths, right)]
    return "| " + " | ".join(padded) + " |"

  rule = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2))
                        for w, r in zip(widths, right)) + "|"
  return "\n".join([line(header), rule] + [line(c) for c in cells]) + "\n"


def format_seed_summary(summary: Sequence[dict[str, Any]],
                        fields: Sequence[str], best_title: str = "best acc"
                        ) -> str:
  """`seed_summary` output as a Markdown table (percent).

  `best_title` names the chosen figure as the results table does; test
  accuracy and ECE get columns when some point has them.
  """
  others = [key for key in fields if key != SEED_KEY]
  titles = {"best_accuracy": best_title, **TEST_TITLES}
  shown = [figure for figure in SPREAD_FIGURES if figure == "best_accuracy"
           or any(row[figure]["runs"] for row in summary)]
  stats = ("median", "mean", "std")
  header = others + ["runs"]
  if "test_accuracy" in shown:  # A run killed before its test score has none.
    header.append("test runs")
  header += [f"{stat} {titles[figure]}" for figure in shown for stat in stats]
  cells = []
  for row in summary:
    line = [_markdown_cell(key, row[key]) for key in others]
    line.append(str(row["best_accuracy"]["runs"]))
    if "test_accuracy" in shown:
      line.append(str(row["test_accuracy"]["runs"]))
    line += [_markdown_cell(figure, row[figure][stat]) for figure in shown
             for stat in stats]
    cells.append(line)
  return _markdown(header, cells,
                   [False] * len(others) + [True] * (len(header) - len(others)))


def _columns(rows: Sequence[dict[str, Any]], fields: Sequence[str],
             fmt: str) -> list[tuple[str, str]]:
  """(row key, Markdown header) of each column the table shows.

  The best and final accuracy's headers name the split they come from;
  selection_split is a column in CSV, and in Markdown where runs differ in it.
  """
  splits = {row.get("selection_split") for row in rows} - {None}
  mixed = len(splits) > 1
  word = SPLIT_WORDS[splits.pop()] if len(splits) == 1 else ""
  columns = [("run", "run"), *((key, key) for key in fields),
             ("experiment", "experiment"), ("final_step", "final step")]
  if fmt == "csv" or mixed:
    columns.append(("selection_split", SPLIT_TITLE))
  columns += [("best_accuracy", f"best {word}acc"),
              ("final_accuracy", f"final {word}acc")]
  columns += [(key, title) for key, title in TEST_TITLES.items()
              if any(row.get(key) is not None for row in rows)]
  return columns + [("wall_time_s", "wall time")]


def format_table(rows: Sequence[dict[str, Any]], fmt: str = "markdown",
                 fields: Sequence[str] = ()) -> str:
  """Renders `results_rows` output as a Markdown table or CSV.

  Args:
    rows: dicts with the keys of `results_rows`.
    fmt: "markdown" (percent, human wall time, padded columns) or "csv"
      (columns named like the row keys, `selection_split` among them:
      accuracy as fractions, `wall_time_s` in seconds, then the human
      `wall_time`; unknown values are empty).
    fields: config keys of `results_rows`, shown after the run's name.

  Returns:
    The table as text, ending with a newline.

  Raises:
    ValueError: for an unknown `fmt`.
  """
  if fmt not in FORMATS:
    raise ValueError(
        f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
  columns = _columns(rows, fields, fmt)
  if fmt == "csv":
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([key for key, _ in columns] + [HUMAN_WALL_TIME])
    for row in rows:
      cells = [_csv_cell(key, row.get(key)) for key, _ in columns]
      writer.writerow(cells + [format_duration(row.get("wall_time_s"))])
    return out.getvalue()

  cells = [[_markdown_cell(key, row.get(key)) for key, _ in columns]
           for row in rows]
  table = _markdown([title for _, title in columns], cells,
                    [key in _NUMERIC for key, _ in columns])
  summary = seed_summary(rows, fields)
  if summary:
    table += ("\nOver seeds (runs that differ only in train.seed):\n\n"
              + format_seed_summary(summary, fields, dict(columns)["best_accuracy"]))
  return table


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the CLI flags.

  Only called when run as a script: plot_curves also has an --out flag, and
  tests import both modules into one process.
  """
  flags.DEFINE_enum("format", "markdown", FORMATS, "Output format.")
  flags.DEFINE_string("out", None, "File to write; stdout if unset.")
  flags.DEFINE_list("fields", [], "Config keys to show as columns, e.g. "
                    "optimizer.learning_rate,train.seed.")


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    cli.exit_error("give exactly one RUNS_DIR: python -m tools.results_table DIR")
  root = paths.expand(argv[1])
  if not os.path.isdir(root):
    cli.exit_error(f"{root} is not a directory: give the folder that holds the runs")
  try:
    rows = results_rows(root, FLAGS.fields)
  except run_records.NoRunsError as e:
    cli.exit_error(str(e))
  unknown = [key for key in FLAGS.fields if all(row[key] is None for row in rows)]
  if unknown:
    cli.exit_error(f"no run under {root} has {', '.join(unknown)} in its config.json: "
                   "--fields takes dotted config keys such as train.seed (python -m "
                   "estimator_cifar.run --experiment=NAME --list_params lists them)")
  text = format_table(rows, FLAGS.format, FLAGS.fields)
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
