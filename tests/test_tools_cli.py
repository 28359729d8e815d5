"""The tools' command lines: the listing, run-as-a-file, --help, and garbage.

Real processes: what a user types is what runs.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.testutil import REPO_ROOT, error_line, run_tool, seconds, subprocess_env

USER_TOOLS = {"benchmark", "download_cifar", "ece_floor", "launch_local_cluster",
              "make_fake_cifar",
              "plot_curves", "results_table", "run_records", "sweep"}


def _write_garbage_run(run_dir) -> None:
  """A model_dir whose every file is damaged in a different way."""
  (run_dir / "eval").mkdir(parents=True)
  (run_dir / "config.json").write_text("{not json")
  (run_dir / "run_info.json").write_text('{"start_time": [1], "end_time": {}}')
  # A TFRecord header claiming a length far past the end of the file.
  (run_dir / "events.out.tfevents.1.host").write_bytes(b"\xff" * 12 + b"garbage")
  (run_dir / "eval" / "metrics.jsonl").write_bytes(
      b'[1, 2]\n{"global_step": "q"}\n\xf1\xf2 not utf-8\n'
      b'{"global_step": 5, "accuracy": "high"}\n')


def test_listing_names_each_user_tool_once():
  proc = subprocess.run([sys.executable, "-m", "tools"], cwd=REPO_ROOT,
                        env=subprocess_env(), capture_output=True, text=True,
                        timeout=seconds(60))
  assert proc.returncode == 0, proc.stderr
  listed = {line.split()[2].removeprefix("tools."): line for line in proc.stdout.splitlines()
            if line.startswith("python -m tools.")}
  assert set(listed) == USER_TOOLS
  assert "python -m tools.bench" in proc.stdout  # Where the measurement scripts are.
  # Each tool's line carries its summary, not just its name.
  assert "grid" in listed["sweep"] and "eval metrics" in listed["run_records"]


def test_a_tool_run_as_a_file_names_the_module_form(tmp_path):
  proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tools", "sweep.py")],
                        cwd=tmp_path, env=subprocess_env(), capture_output=True,
                        text=True, timeout=seconds(60))
  assert "python -m tools.sweep" in error_line(proc.returncode, proc.stderr)


def test_run_records_help_and_one_json_line_per_run(tmp_path):
  helped = run_tool("run_records", "--help")
  assert helped.returncode == 0 and "MODEL_DIR" in helped.stdout
  (tmp_path / "a").mkdir()
  (tmp_path / "a" / "config.json").write_text('{"name": "resnet_sgd"}')
  listed = run_tool("run_records", str(tmp_path))
  assert listed.returncode == 0, listed.stderr
  (record,) = [json.loads(line) for line in listed.stdout.splitlines()]
  assert record["experiment"] == "resnet_sgd" and record["best_accuracy"] is None


@pytest.mark.parametrize("tool", ["results_table", "run_records", "plot_curves"])
def test_garbage_runs_are_rows_of_unknowns_not_tracebacks(tool, tmp_path):
  _write_garbage_run(tmp_path / "runs" / "broken")
  out = [f"--out={tmp_path / 'curves.png'}"] if tool == "plot_curves" else []
  proc = run_tool(tool, str(tmp_path / "runs"), *out)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  # The damage is reported, not hidden.
  assert "metrics.jsonl: skipped 2 line(s) that are not JSON rows" in proc.stderr


@pytest.mark.parametrize("tool", ["results_table", "run_records", "plot_curves"])
def test_a_folder_of_garbage_files_is_one_error(tool, tmp_path):
  (tmp_path / "notes.txt").write_bytes(os.urandom(64))
  (tmp_path / "sub").mkdir()
  (tmp_path / "sub" / "model.ckpt.data").write_bytes(os.urandom(64))
  proc = run_tool(tool, str(tmp_path))
  assert "no run found" in error_line(proc.returncode, proc.stderr)


def test_a_field_no_run_has_is_one_error(tmp_path):
  (tmp_path / "a").mkdir()
  (tmp_path / "a" / "config.json").write_text('{"train": {"seed": 1}}')
  proc = run_tool("results_table", str(tmp_path), "--fields=train.seed,train.sede")
  line = error_line(proc.returncode, proc.stderr)
  assert "train.sede" in line and "train.seed," not in line and "--list_params" in line
