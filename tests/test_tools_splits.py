"""The tools read validation and test rows apart.

Each run here is a handwritten `eval/metrics.jsonl` (and config.json): one
that chose on a validation split and scored the test split once at its final
step, one that scored the test split all along, and one from before rows
named their split. Values are exact in binary so they compare with `==`.
"""

import csv
import io
import json
import re

import pytest

from tests.testutil import run_tool
from tools import plot_curves, results_table, run_records, sweep_report

# A validation run: best 0.75 at step 200, final 0.625; the test split once
# at 300. Mixing them would make the test row the best (0.875) and final.
VALIDATION_ROWS = [(100, 0.5), (200, 0.75), (300, 0.625)]
TEST_ONCE = {"accuracy": 0.875, "ece": 0.0625, "ece_uncalibrated": 0.125,
             "nll": 0.5, "temperature": 1.5}
TEST_ROWS = [(100, 0.25), (200, 0.5)]  # A run without a validation split.


def write_run(model_dir, rows, config=None):
  """A run's eval/metrics.jsonl of `rows` (dicts) and its config.json."""
  (model_dir / "eval").mkdir(parents=True)
  (model_dir / "eval" / "metrics.jsonl").write_text(
      "".join(json.dumps(row) + "\n" for row in rows))
  (model_dir / "config.json").write_text(json.dumps(
      config or {"name": model_dir.name}))


def validation_run(model_dir, accuracies=VALIDATION_ROWS, test_once=TEST_ONCE,
                   config=None):
  rows = [{"global_step": s, "accuracy": a, "split": "validation"}
          for s, a in accuracies]
  final = accuracies[-1][0]
  write_run(model_dir, rows + [dict(test_once, global_step=final,
                                    split="test")], config)


def test_run_summary_chooses_on_validation_and_reports_the_test_once(
    tmp_path):
  validation_run(tmp_path / "val")
  summary = run_records.run_summary(str(tmp_path / "val"))
  assert summary["selection_split"] == "validation"
  assert (summary["best_accuracy"], summary["best_step"]) == (0.75, 200)
  assert summary["final_accuracy"] == 0.625
  assert summary["final_step"] == 300
  assert (summary["test_accuracy"], summary["test_ece"],
          summary["test_ece_uncalibrated"]) == (0.875, 0.0625, 0.125)


def test_the_test_figure_is_the_last_test_row_at_the_final_step(tmp_path):
  rows = [{"global_step": 100, "accuracy": 0.5, "split": "validation"},
          {"global_step": 200, "accuracy": 0.625, "split": "validation"},
          {"global_step": 200, "accuracy": 0.75, "split": "test"},
          {"global_step": 200, "accuracy": 0.8125, "split": "test"},
          # An older checkpoint scored on demand later is not the run's figure.
          {"global_step": 100, "accuracy": 0.25, "split": "test"}]
  write_run(tmp_path / "run", rows)
  summary = run_records.run_summary(str(tmp_path / "run"))
  assert summary["test_accuracy"] == 0.8125
  assert summary["test_ece"] is None  # That row has none.
  assert summary["best_accuracy"] == 0.625


@pytest.mark.parametrize("split", [{"split": "test"}, {}],
                         ids=["test_split", "before_splits"])
def test_run_without_validation_chooses_on_test_and_has_no_test_once(
    tmp_path, split):
  write_run(tmp_path / "run", [dict(split, global_step=s, accuracy=a, ece=0.25)
                               for s, a in TEST_ROWS])
  summary = run_records.run_summary(str(tmp_path / "run"))
  assert summary["selection_split"] == "test"
  assert (summary["best_accuracy"], summary["best_step"]) == (0.5, 200)
  assert summary["final_accuracy"] == 0.5
  assert summary["test_accuracy"] is None and summary["test_ece"] is None


def _markdown_cells(text):
  """Rows of the first Markdown table in `text` as lists of stripped cells."""
  lines = [line for line in text.split("\n\n")[0].splitlines()
           if line.startswith("|") and not set(line) <= set("|-: ")]
  return [[cell.strip() for cell in line.strip("|").split("|")]
          for line in lines]


def test_table_names_the_split_and_orders_by_it_not_by_test(tmp_path):
  # "good_val" chose better on validation, "good_test" scored better on test.
  validation_run(tmp_path / "good_val", [(10, 0.75)], dict(TEST_ONCE, accuracy=0.5))
  validation_run(tmp_path / "good_test", [(10, 0.5)], TEST_ONCE)
  rows = results_table.results_rows(str(tmp_path))
  assert [row["run"] for row in rows] == ["good_val", "good_test"]
  header, *cells = _markdown_cells(results_table.format_table(rows))
  assert header == ["run", "experiment", "final step", "best val acc",
                    "final val acc", "test acc", "test ece", "test ece uncal",
                    "wall time"]
  assert cells[0] == ["good_val", "good_val", "10", "75.00%", "75.00%",
                      "50.00%", "6.25%", "12.50%", "-"]
  table = list(csv.DictReader(io.StringIO(
      results_table.format_table(rows, "csv"))))
  assert [(r["selection_split"], float(r["best_accuracy"]),
           float(r["test_accuracy"]), float(r["test_ece"])) for r in table] == [
               ("validation", 0.75, 0.5, 0.0625),
               ("validation", 0.5, 0.875, 0.0625)]


def test_table_of_runs_without_validation_keeps_its_columns(tmp_path):
  write_run(tmp_path / "old", [{"global_step": s, "accuracy": a}
                               for s, a in TEST_ROWS])
  rows = results_table.results_rows(str(tmp_path))
  header, cells = _markdown_cells(results_table.format_table(rows))
  assert header == ["run", "experiment", "final step", "best acc",
                    "final acc", "wall time"]
  assert cells == ["old", "old", "200", "50.00%", "50.00%", "-"]
  csv_header = results_table.format_table(rows, "csv").splitlines()[0]
  assert "test_accuracy" not in csv_header and "selection_split" in csv_header


def test_mixed_table_says_what_each_run_chose_on(tmp_path):
  validation_run(tmp_path / "new")
  write_run(tmp_path / "old", [{"global_step": s, "accuracy": a}
                               for s, a in TEST_ROWS])
  (tmp_path / "never").mkdir()
  (tmp_path / "never" / "config.json").write_text("{}")
  rows = results_table.results_rows(str(tmp_path))
  header, *cells = _markdown_cells(results_table.format_table(rows))
  assert header[3:6] == ["chosen on", "best acc", "final acc"]
  assert [row[:4] for row in cells] == [["new", "new", "300", "validation"],
                                        ["old", "old", "200", "test"],
                                        ["never", "never", "-", "-"]]
  assert [row[6] for row in cells] == ["87.50%", "-", "-"]  # test acc


def _seed_runs(root):
  """Two learning rates, three seeds each, all chosen on validation."""
  points = {0.1: ([0.75, 0.5, 0.625], [0.5, 0.625, 0.75], [0.0625, 0.125, 0.25]),
            0.2: ([0.5, 0.375, 0.25], [0.875, 0.75, 0.625], [0.5, 0.25, 0.25])}
  for lr, (best, test, ece) in points.items():
    for seed in range(3):
      validation_run(
          root / f"lr={lr}__seed={seed}", [(10, best[seed])],
          dict(TEST_ONCE, accuracy=test[seed], ece=ece[seed]),
          {"name": "x", "optimizer": {"learning_rate": lr},
           "train": {"seed": seed}})
  return ["optimizer.learning_rate", "train.seed"]


def test_seed_summary_spreads_the_chosen_and_the_test_figures(tmp_path):
  fields = _seed_runs(tmp_path)
  rows = results_table.results_rows(str(tmp_path), fields)
  summary = results_table.seed_summary(rows, fields)
  # Ordered by the chosen figure, though lr=0.2 has the better test median.
  assert [s["optimizer.learning_rate"] for s in summary] == [0.1, 0.2]
  first = summary[0]
  assert first["best_accuracy"]["median"] == 0.625
  assert first["test_accuracy"] == {"runs": 3, "median": 0.625,
                                    "mean": pytest.approx(0.625),
                                    "std": pytest.approx(0.125)}
  assert first["test_ece"]["median"] == 0.125
  assert first["test_ece"]["mean"] == pytest.approx(0.4375 / 3)
  markdown = re.sub(" +", " ", results_table.format_table(rows, "markdown",
                                                          fields))
  assert ("| optimizer.learning_rate | runs | test runs | median best val acc "
          "| mean best val acc | std best val acc | median test acc | mean test "
          "acc | std test acc | median test ece |") in markdown
  assert ("| 0.1 | 3 | 3 | 62.50% | 62.50% | 12.50% | 62.50% | 62.50% | "
          "12.50% | 12.50% | 14.58% |") in markdown


def test_sweep_report_uses_the_split_aware_tables(tmp_path):
  fields = _seed_runs(tmp_path)
  written = sweep_report.write_report(str(tmp_path), fields=fields)
  assert len(written) == 3
  with open(tmp_path / sweep_report.RESULTS_MD, encoding="utf-8") as f:
    markdown = f.read()
  assert "best val acc" in markdown and "median test acc" in markdown
  with open(tmp_path / sweep_report.RESULTS_CSV, encoding="utf-8") as f:
    table = list(csv.DictReader(f))
  assert {float(row["test_accuracy"]) for row in table} == {
      0.5, 0.625, 0.75, 0.875}


def test_curves_draw_each_split_as_its_own_series(tmp_path):
  validation_run(tmp_path / "val")
  write_run(tmp_path / "old", [{"global_step": s, "accuracy": a}
                               for s, a in TEST_ROWS])
  data = plot_curves.plot_runs([str(tmp_path / "val"), str(tmp_path / "old")],
                               str(tmp_path / "curves.png"))
  accuracy = data["val"]["eval_accuracy"]
  assert list(accuracy) == ["validation", "test"]
  assert list(zip(accuracy["validation"]["steps"],
                  accuracy["validation"]["values"])) == VALIDATION_ROWS
  assert accuracy["test"] == {"steps": [300], "values": [0.875]}
  assert list(data["old"]["eval_accuracy"]) == ["test"]


def test_cli_run_records_prints_the_split_figures(tmp_path):
  validation_run(tmp_path / "val")
  proc = run_tool("run_records", str(tmp_path / "val"))
  assert proc.returncode == 0, proc.stderr
  record = json.loads(proc.stdout)
  assert (record["selection_split"], record["best_accuracy"],
          record["test_accuracy"]) == ("validation", 0.75, 0.875)
