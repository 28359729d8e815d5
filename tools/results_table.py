"""Tabulates every run under a directory, best accuracy first.

Usage (from the repository root):

  python -m tools.results_table runs/                  # Markdown to stdout
  python -m tools.results_table runs/ --format=csv --out results.csv
  python -m tools.results_table runs/ --fields=optimizer.learning_rate,train.seed

One row per model_dir found under RUNS_DIR (see `run_records.find_runs`):
run (path relative to RUNS_DIR), the value of each `--fields` config key in
the run's config.json, experiment, final step, best and final eval accuracy,
and wall time. Markdown shows accuracy in percent for pasting into a README;
CSV keeps plain fractions and seconds so that it can be read back. With
`train.seed` among the fields, a second Markdown table summarises the runs
that differ only in their seed: their count and the median, mean and
standard deviation of their best accuracy.
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
from . import cli, run_records

FORMATS = ("markdown", "csv")
MISSING = "-"
SEED_KEY = "train.seed"  # Runs that differ only in it are one recipe's noise.

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
  if key in ("best_accuracy", "final_accuracy"):
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
    Dicts with those fields, `runs` (evaluated runs), and the `median`,
    `mean` and `std` (sample standard deviation; None below 2 runs) of their
    best accuracy, best median first. Empty unless SEED_KEY is in `fields`.
  """
  if SEED_KEY not in fields:
    return []
  others = [key for key in fields if key != SEED_KEY]
  groups: dict[str, list[float]] = {}
  values: dict[str, dict[str, Any]] = {}
  for row in rows:
    group = json.dumps([row.get(key) for key in others])
    values[group] = {key: row.get(key) for key in others}
    groups.setdefault(group, [])
    if row.get("best_accuracy") is not None:
      groups[group].append(row["best_accuracy"])
  summary = [dict(values[g], runs=len(accs),
                  median=statistics.median(accs) if accs else None,
                  mean=statistics.mean(accs) if accs else None,
                  std=statistics.stdev(accs) if len(accs) > 1 else None)
             for g, accs in groups.items()]
  return sorted(summary, key=lambda r: (r["median"] is None, -(r["median"] or 0)))


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
                        fields: Sequence[str]) -> str:
  """`seed_summary` output as a Markdown table (accuracy in percent)."""
  others = [key for key in fields if key != SEED_KEY]
  stats = ("median", "mean", "std")
  cells = [[_markdown_cell(key, row[key]) for key in others] + [str(row["runs"])]
           + [MISSING if row[s] is None else f"{100.0 * row[s]:.2f}%" for s in stats]
           for row in summary]
  return _markdown(others + ["runs"] + [f"{s} best acc" for s in stats], cells,
                   [False] * len(others) + [True] * 4)


def format_table(rows: Sequence[dict[str, Any]], fmt: str = "markdown",
                 fields: Sequence[str] = ()) -> str:
  """Renders `results_rows` output as a Markdown table or CSV.

  Args:
    rows: dicts with the keys of `results_rows`.
    fmt: "markdown" (percent, human wall time, padded columns) or "csv"
      (columns named like the row keys: accuracy as fractions, `wall_time_s`
      in seconds, then the human `wall_time`; unknown values are empty).
    fields: config keys of `results_rows`, shown after the run's name.

  Returns:
    The table as text, ending with a newline.

  Raises:
    ValueError: for an unknown `fmt`.
  """
  if fmt == "csv":
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = _CSV_COLUMNS[:1] + tuple(fields) + _CSV_COLUMNS[1:-1]
    writer.writerow(keys + _CSV_COLUMNS[-1:])
    for row in rows:
      cells = [_csv_cell(key, row.get(key)) for key in keys]
      writer.writerow(cells + [format_duration(row.get("wall_time_s"))])
    return out.getvalue()
  if fmt != "markdown":
    raise ValueError(
        f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")

  columns = _COLUMNS[:1] + tuple((key, key) for key in fields) + _COLUMNS[1:]
  cells = [[_markdown_cell(key, row.get(key)) for key, _ in columns]
           for row in rows]
  table = _markdown([title for _, title in columns], cells,
                    [key in _NUMERIC for key, _ in columns])
  summary = seed_summary(rows, fields)
  if summary:
    table += ("\nOver seeds (runs that differ only in train.seed):\n\n"
              + format_seed_summary(summary, fields))
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
