"""Tests for the run_records, plot_curves and results_table tools.

The fixtures write real TensorBoard event files with TensorFlow, in both
summary flavours a model_dir can hold: v1 (`simple_value`, as the Estimator
writes) and v2 (rank-0 tensors, as `tf.summary.scalar` writes). Values are
exactly representable in float32 so that reads can be compared with `==`.
"""

import csv
import io
import json
import re

import pytest
import tensorflow as tf

from tests.testutil import run_tool
from tools import plot_curves, results_table, run_figures, run_records

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Run "a": v1 events, config.json, run_info.json, metrics.jsonl.
A_LOSS = [(0, 2.5), (100, 1.5), (200, 1.25), (300, 0.75)]
A_LR = [(0, 0.125), (100, 0.125), (200, 0.015625), (300, 0.015625)]
A_METRICS = [(100, 0.5), (200, 0.8), (300, 0.75)]  # Best 0.8, final 0.75.
A_WALL = 723.0  # run_info.json: 12m03s.

# Run "group/b": v2 events, no config.json, accuracy from eval events only.
B_LOSS = [(0, 2.25), (150, 1.0), (300, 0.5)]
B_LR = [(0, 0.25), (300, 0.25)]
B_CROSS_ENTROPY = [(0, 2.0), (300, 0.25)]
B_ACCURACY = [(150, 0.625), (300, 0.875)]  # Best 0.875 = final.


def _v1_summary(tag, value):
  return tf.compat.v1.Summary(
      value=[tf.compat.v1.Summary.Value(tag=tag, simple_value=value)])


def write_v1_events(event_dir, series_by_tag):
  """Writes v1 `simple_value` scalars the way the Estimator does."""
  # FileWriter refuses eager mode, which TF 2 enables globally.
  with tf.Graph().as_default():
    writer = tf.compat.v1.summary.FileWriter(event_dir)
    for tag, series in series_by_tag.items():
      for step, value in series:
        writer.add_summary(_v1_summary(tag, value), global_step=step)
    writer.close()


def write_v2_events(event_dir, series_by_tag):
  """Writes v2 tensor scalars, plus a histogram and text readers must skip."""
  writer = tf.summary.create_file_writer(event_dir)
  with writer.as_default():
    for tag, series in series_by_tag.items():
      for step, value in series:
        tf.summary.scalar(tag, value, step=step)
    tf.summary.histogram("weights", [1.0, 2.0, 3.0], step=0)
    tf.summary.text("note", "not a scalar", step=0)
  writer.close()


def _write_json(path, obj):
  with open(path, "w", encoding="utf-8") as f:
    json.dump(obj, f)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("runs")

  a = root / "a"
  (a / "eval").mkdir(parents=True)
  _write_json(a / "config.json",
              {"experiment": "resnet_sgd", "model": {"name": "resnet20"},
               "train": {"batch_size": 128}})
  _write_json(a / "run_info.json",
              {"start_time": "2024-05-01T10:00:00+00:00",
               "end_time": "2024-05-01T10:12:03+00:00", "status": "done"})
  (a / "checkpoint").write_text(
      'model_checkpoint_path: "model.ckpt-300"\n'
      'all_model_checkpoint_paths: "model.ckpt-300"\n')
  write_v1_events(str(a), {"loss": A_LOSS, "learning_rate": A_LR,
                           "global_step/sec": [(100, 4.0), (200, 4.5)]})
  # Eval events disagree with metrics.jsonl on purpose: the jsonl must win.
  write_v1_events(str(a / "eval"), {"accuracy": [(300, 0.125)]})
  lines = [json.dumps({"global_step": s, "accuracy": v, "top_5_accuracy": 0.9,
                       "loss": 1.0, "checkpoint": f"model.ckpt-{s}",
                       "time": 1714557600 + s}) for s, v in A_METRICS]
  # An evaluator killed mid-append leaves a truncated last line.
  (a / "eval" / "metrics.jsonl").write_text(
      "\n".join(lines) + '\n{"global_step": 400, "accur')

  b = root / "group" / "b"
  (b / "eval").mkdir(parents=True)
  write_v2_events(str(b), {"loss": B_LOSS, "learning_rate": B_LR,
                           "losses/cross_entropy": B_CROSS_ENTROPY})
  write_v2_events(str(b / "eval"), {"accuracy": B_ACCURACY})

  c = root / "c"  # Configured but never trained: every series is missing.
  c.mkdir()
  _write_json(c / "config.json", {"experiment": "tiny"})

  (root / "notes").mkdir()  # Not a run.
  return root


def test_read_scalars_v1_exact_values(runs_dir):
  scalars = run_records.read_scalars(str(runs_dir / "a"))
  assert scalars["loss"] == A_LOSS
  assert scalars["learning_rate"] == A_LR
  assert scalars["global_step/sec"] == [(100, 4.0), (200, 4.5)]
  assert set(scalars) == {"loss", "learning_rate", "global_step/sec"}


def test_read_scalars_v2_tensors_and_skips_non_scalars(runs_dir):
  scalars = run_records.read_scalars(str(runs_dir / "group" / "b"))
  assert scalars == {"loss": B_LOSS, "learning_rate": B_LR,
                     "losses/cross_entropy": B_CROSS_ENTROPY}


def test_read_scalars_does_not_descend_and_handles_empty_dir(runs_dir):
  assert "accuracy" not in run_records.read_scalars(str(runs_dir / "a"))
  assert run_records.read_scalars(str(runs_dir / "notes")) == {}


def test_read_scalars_sorted_and_later_duplicate_wins(tmp_path):
  write_v1_events(str(tmp_path), {"loss": [(20, 1.0), (10, 2.0), (20, 0.5)]})
  assert run_records.read_scalars(str(tmp_path))["loss"] == [(10, 2.0),
                                                             (20, 0.5)]


def test_read_scalars_tolerates_truncated_event_file(tmp_path):
  write_v1_events(str(tmp_path), {"loss": A_LOSS})
  (path,) = run_records.event_files(str(tmp_path))
  with open(path, "ab") as f:  # A record the writer has not finished.
    f.write(b"\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00partial")
  assert run_records.read_scalars(str(tmp_path))["loss"] == A_LOSS


def test_read_rows_tolerates_truncated_last_line(runs_dir):
  records = run_figures.read_rows(str(runs_dir / "a"))
  assert [(r["global_step"], r["accuracy"]) for r in records] == A_METRICS
  assert records[0]["checkpoint"] == "model.ckpt-100"
  assert run_figures.read_rows(str(runs_dir / "c")) == []


def test_find_runs(runs_dir):
  assert run_records.find_runs(str(runs_dir)) == [
      str(runs_dir / "a"), str(runs_dir / "c"), str(runs_dir / "group" / "b")]
  # A model_dir given directly is one run, not also its eval/ subdirectory.
  assert run_records.find_runs(str(runs_dir / "a")) == [str(runs_dir / "a")]
  assert run_records.find_runs(str(runs_dir / "notes")) == []


def test_run_summary(runs_dir):
  a = run_records.run_summary(str(runs_dir / "a"))
  assert a["experiment"] == "resnet_sgd"
  assert a["final_step"] == 300
  assert (a["best_accuracy"], a["best_step"]) == (0.8, 200)
  assert a["final_accuracy"] == 0.75
  assert a["selection_split"] == "test" and a["test_accuracy"] is None
  assert a["wall_time_s"] == A_WALL
  assert a["status"] == "done"

  b = run_records.run_summary(str(runs_dir / "group" / "b"))
  assert b["experiment"] == "b"  # No config.json: the directory name.
  assert b["final_step"] == 300
  assert (b["best_accuracy"], b["final_accuracy"]) == (0.875, 0.875)
  assert 0.0 <= b["wall_time_s"] < 600.0  # Span of the real event times.

  c = run_records.run_summary(str(runs_dir / "c"))
  assert c["experiment"] == "tiny"
  assert c["final_step"] is None and c["best_accuracy"] is None
  assert c["wall_time_s"] is None


def test_run_summary_wall_time_from_event_span(tmp_path):
  # FileWriter stamps its first event with the real time, so write the
  # records directly to control every wall time.
  path = str(tmp_path / "events.out.tfevents.1000.host")
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(tf.compat.v1.Event(wall_time=1000.0,
                                    file_version="brain.Event:2")
                 .SerializeToString())
    for step, wall_time in ((1, 1010.0), (9, 1090.0)):
      writer.write(tf.compat.v1.Event(wall_time=wall_time, step=step,
                                      summary=_v1_summary("loss", 1.0))
                   .SerializeToString())
  _write_json(tmp_path / "run_info.json", {"start_time": 5.0})  # No end.
  summary = run_records.run_summary(str(tmp_path))
  assert summary["wall_time_s"] == 90.0
  assert summary["final_step"] == 9

  # A later eval's timestamp in metrics.jsonl extends the span.
  (tmp_path / "eval").mkdir()
  (tmp_path / "eval" / "metrics.jsonl").write_text(json.dumps(
      {"global_step": 9, "accuracy": 0.5, "top_5_accuracy": 0.75, "loss": 1.0,
       "checkpoint": "model.ckpt-9", "time": 1100.0}) + "\n")
  assert run_records.run_summary(str(tmp_path))["wall_time_s"] == 100.0


def _read_png(path):
  with open(path, "rb") as f:
    assert f.read(8) == PNG_SIGNATURE
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  image = plt.imread(path)
  assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
  return image


def test_plot_runs_writes_png_with_logged_values(runs_dir, tmp_path):
  out = tmp_path / "figs" / "curves.png"
  data = plot_curves.plot_runs(
      [str(runs_dir / "a"), str(runs_dir / "group" / "b"), str(runs_dir / "c")],
      str(out), smoothing=0.6)
  image = _read_png(out)
  assert image.shape[1] > image.shape[0]  # Three panels side by side.

  assert set(data) == {"a", "b", "c"}
  a, b = data["a"], data["b"]
  assert list(zip(a["train_loss"]["steps"],
                  a["train_loss"]["values"])) == A_LOSS
  assert len(a["train_loss"]["smoothed"]) == len(A_LOSS)
  assert a["train_loss"]["smoothed"][0] == A_LOSS[0][1]  # Debiased EMA.
  # Rows without a split scored the test split.
  assert list(zip(a["eval_accuracy"]["test"]["steps"],
                  a["eval_accuracy"]["test"]["values"])) == A_METRICS
  assert list(zip(a["learning_rate"]["steps"],
                  a["learning_rate"]["values"])) == A_LR
  assert list(zip(b["eval_accuracy"]["test"]["steps"],
                  b["eval_accuracy"]["test"]["values"])) == B_ACCURACY
  assert list(zip(b["learning_rate"]["steps"],
                  b["learning_rate"]["values"])) == B_LR
  # The run with no data is drawn as nothing, not a crash.
  assert set(data["c"]) == {"model_dir"}


def test_smooth():
  assert plot_curves.smooth([1.0, 3.0], 0.0) == [1.0, 3.0]
  smoothed = plot_curves.smooth([2.0, 2.0, 2.0], 0.9)
  assert smoothed == pytest.approx([2.0, 2.0, 2.0])
  with pytest.raises(ValueError, match="smoothing"):
    plot_curves.plot_runs(["x"], "unused.png", smoothing=1.0)


def test_results_rows_order_and_values(runs_dir):
  rows = results_table.results_rows(str(runs_dir))
  assert [r["run"] for r in rows] == ["group/b", "a", "c"]
  assert [r["best_accuracy"] for r in rows] == [0.875, 0.8, None]
  assert [r["final_accuracy"] for r in rows] == [0.875, 0.75, None]
  with pytest.raises(run_records.NoRunsError, match="no run found"):
    results_table.results_rows(str(runs_dir / "notes"))


def test_format_table_markdown(runs_dir):
  text = results_table.format_table(
      results_table.results_rows(str(runs_dir)), "markdown")
  lines = text.splitlines()
  assert len(lines) == 5  # Header, rule, three runs.
  assert lines[0].split("|")[1].strip() == "run"
  assert set(lines[1]) <= set("|-:")
  cells = [[c.strip() for c in line.strip("|").split("|")]
           for line in lines[2:]]
  assert cells[0][:5] == ["group/b", "b", "300", "87.50%", "87.50%"]
  assert cells[1] == ["a", "resnet_sgd", "300", "80.00%", "75.00%", "12m03s"]
  assert cells[2] == ["c", "tiny", "-", "-", "-", "-"]


def test_format_table_csv(runs_dir):
  text = results_table.format_table(
      results_table.results_rows(str(runs_dir)), "csv")
  rows = list(csv.DictReader(io.StringIO(text)))
  assert [r["run"] for r in rows] == ["group/b", "a", "c"]
  assert float(rows[1]["best_accuracy"]) == 0.8
  assert float(rows[1]["final_accuracy"]) == 0.75
  assert float(rows[1]["wall_time_s"]) == A_WALL
  assert rows[1]["wall_time"] == "12m03s"
  assert rows[2]["best_accuracy"] == ""
  with pytest.raises(ValueError, match="markdown, csv"):
    results_table.format_table([], "html")


def test_format_duration():
  assert results_table.format_duration(45.2) == "45s"
  assert results_table.format_duration(723) == "12m03s"
  assert results_table.format_duration(3 * 3600 + 7 * 60 + 9) == "3h07m09s"
  assert results_table.format_duration(None) == "-"


@pytest.mark.slow
def test_cli_plot_curves(runs_dir, tmp_path):
  out = tmp_path / "cli.png"
  proc = run_tool("plot_curves", str(runs_dir / "a"),
                   str(runs_dir / "group" / "b"), "--out", str(out),
                   "--smoothing", "0.3")
  assert proc.returncode == 0, proc.stderr
  _read_png(out)


def test_cli_results_table(runs_dir, tmp_path):
  out = tmp_path / "results.csv"
  proc = run_tool("results_table", str(runs_dir), "--format=csv",
                   "--out", str(out))
  assert proc.returncode == 0, proc.stderr
  with open(out, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert [r["run"] for r in rows] == ["group/b", "a", "c"]

  proc = run_tool("results_table", str(runs_dir))
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.splitlines()[2].startswith("| group/b")


@pytest.mark.parametrize("tool", ["plot_curves", "results_table"])
def test_cli_empty_dir_fails_cleanly(tool, tmp_path):
  proc = run_tool(tool, str(tmp_path))
  assert proc.returncode != 0
  assert "no run found" in proc.stderr
  assert "Traceback" not in proc.stderr + proc.stdout


def _run_with(root, name, lr, seed, accuracy):
  """A finished-looking run: its config.json and one evaluation."""
  run = root / name
  (run / "eval").mkdir(parents=True)
  (run / "config.json").write_text(json.dumps(
      {"name": "resnet_sgd", "optimizer": {"learning_rate": lr},
       "train": {"seed": seed}}))
  (run / "eval" / "metrics.jsonl").write_text(
      json.dumps({"global_step": 10, "accuracy": accuracy}) + "\n")


def test_swept_fields_are_columns_and_seeds_are_summarised(tmp_path):
  accuracies = {0.1: [0.5, 0.75, 0.625], 0.2: [0.25, 0.375, 0.5]}
  for lr, accs in accuracies.items():
    for seed, acc in enumerate(accs, start=1):
      _run_with(tmp_path, f"lr={lr}__seed={seed}", lr, seed, acc)
  fields = ["optimizer.learning_rate", "train.seed"]
  rows = results_table.results_rows(str(tmp_path), fields)
  assert {(r["optimizer.learning_rate"], r["train.seed"], r["best_accuracy"])
          for r in rows} == {(lr, seed, acc) for lr, accs in accuracies.items()
                             for seed, acc in enumerate(accs, start=1)}
  summary = results_table.seed_summary(rows, fields)
  best = [s["best_accuracy"] for s in summary]
  assert [s["optimizer.learning_rate"] for s in summary] == [0.1, 0.2]
  assert [b["runs"] for b in best] == [3, 3]
  assert best[0]["median"] == 0.625 and best[0]["mean"] == pytest.approx(0.625)
  assert best[0]["std"] == pytest.approx(0.125)  # Sample standard deviation.
  assert summary[0]["test_accuracy"]["runs"] == 0  # No validation split.
  markdown = re.sub(" +", " ", results_table.format_table(rows, "markdown", fields))
  assert "| run | optimizer.learning_rate | train.seed | experiment |" in markdown
  assert "| 0.1 | 3 | 62.50% | 62.50% | 12.50% |" in markdown
  csv_header = results_table.format_table(rows, "csv", fields).splitlines()[0]
  assert csv_header.startswith("run,optimizer.learning_rate,train.seed,experiment")
