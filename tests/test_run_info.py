"""Tests for estimator_cifar.rundir.run_record; --mode=eval reproduces a run's figure."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import estimator_cifar
from estimator_cifar import config as config_lib
from estimator_cifar.rundir import metrics_log, run_record
from estimator_cifar.errors import ConfigError, DataError, UserError
from tests import testutil


class NanLossError(UserError):
  """Stands in for the NaN stop of another module: recognised by its name."""


class MaintenanceError(Exception):
  """'nan' inside a word is no NaN."""


@pytest.mark.parametrize("error, status, message", [
    (None, "finished", None),
    (NanLossError("loss is NaN at step 7"), "stopped_nan",
     "loss is NaN at step 7"),
    (type("NanLossDuringTrainingError", (RuntimeError,), {})("NaN loss"),
     "stopped_nan", "NaN loss"),
    (DataError("no data in /x"), "failed", "no data in /x"),
    (ValueError("bad shape"), "failed", "ValueError: bad shape"),
    (MaintenanceError("down"), "failed", "MaintenanceError: down"),
    (KeyboardInterrupt(), "interrupted", "interrupted (KeyboardInterrupt)"),
])
def test_outcome(error, status, message):
  assert run_record.outcome(error) == (status, message)


def test_start_end_round_trip_and_history(tmp_path, monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  model_dir = str(tmp_path / "run")
  cfg = testutil.tiny_config()
  argv = ["run.py", "--experiment=resnet_sgd", f"--model_dir={model_dir}"]
  record = run_record.start(cfg, model_dir, "train", None, argv=argv)
  on_disk = run_record.read(model_dir)
  assert on_disk["status"] == "running" and on_disk["end_time"] is None
  assert on_disk["config"] == json.loads(cfg.to_json())
  assert on_disk["command"] == argv
  assert on_disk["start_step"] == 0 and on_disk["resumed"] is False
  assert on_disk["versions"]["numpy"] == np.__version__
  assert set(on_disk["versions"]) == {"python", "tensorflow", "numpy", "absl",
                                      "tensorflow_estimator",
                                      "tensorflow_datasets"}
  assert on_disk["package"]["version"] == estimator_cifar.__version__
  assert any(d["type"] == "CPU" for d in on_disk["devices"])
  assert on_disk["host"]["pid"] == os.getpid()
  assert os.listdir(model_dir) == ["run_info.json"]  # No temp file left.

  run_record.end(record, DataError("gone"))
  first = run_record.read(model_dir)
  assert (first["status"], first["error"]) == ("failed", "gone")
  assert first["start_time"] < first["end_time"]
  assert first["duration_s"] >= 0 and "_t0" not in first

  # A retry killed without a word, then a third attempt with more steps.
  run_record.start(cfg, model_dir, "train", None)
  longer = testutil.tiny_config("train.steps=9")
  record = run_record.start(longer, model_dir, "train", None)
  run_record.end(record, None, {"accuracy": 0.5, "global_step": 4})
  last = run_record.read(model_dir)
  assert last["status"] == "finished" and last["error"] is None
  assert last["final_metrics"] == {"accuracy": 0.5, "global_step": 4}
  assert last["config"]["train"]["steps"] == 9
  assert [h["status"] for h in last["history"]] == ["failed",
                                                    "killed_or_preempted"]
  # An attempt keeps its config only where the next attempt changed it.
  assert "config" not in last["history"][0]
  assert last["history"][1]["config"]["train"]["steps"] == 6
  assert all("history" not in h for h in last["history"])


@pytest.mark.parametrize("tf_config, chief", [
    (None, True),
    ({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
      "task": {"type": "chief", "index": 0}}, True),
    ({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
      "task": {"type": "worker", "index": 0}}, False),
    ({"cluster": {"worker": ["a:1", "b:1"]},
      "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:1"]},
      "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["a:1"]}, "task": {"type": "evaluator"}}, False),
])
def test_only_the_chief_writes(tmp_path, monkeypatch, tf_config, chief):
  if tf_config is None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
  else:
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
  record = run_record.start(testutil.tiny_config(), str(tmp_path), "train", None)
  assert (record is not None) == chief
  assert os.path.exists(run_record.path(str(tmp_path))) == chief


def _git(cwd, *args):
  subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                 cwd=cwd, check=True, capture_output=True)


def test_git_state(tmp_path, monkeypatch):
  if shutil.which("git") is None:
    pytest.skip("no git")
  package = tmp_path / "checkout" / "estimator_cifar"
  package.mkdir(parents=True)
  (package / "__init__.py").write_text("x = 1\n")
  _git(package.parent, "init", "-q")
  _git(package.parent, "add", ".")
  _git(package.parent, "commit", "-q", "-m", "c")
  head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, text=True,
                        capture_output=True, check=True).stdout.strip()
  assert run_record.git_state(str(package)) == {"git_commit": head,
                                              "git_dirty": False}
  (package / "__init__.py").write_text("x = 2\n")
  assert run_record.git_state(str(package))["git_dirty"] is True
  # A copy installed somewhere inside an unrelated repository is no checkout.
  other = package.parent / "venv" / "site-packages" / "estimator_cifar"
  other.mkdir(parents=True)
  assert run_record.git_state(str(other)) == {}
  assert run_record.git_state(str(tmp_path)) == {}  # Not a repository at all.
  monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # No git binary.
  assert run_record.git_state(str(package)) == {}


def test_recorded_config(tmp_path):
  cfg = testutil.tiny_config("ema.eval_with_ema=true")
  assert run_record.recorded_config(str(tmp_path), []) is None
  (tmp_path / "config.json").write_text(cfg.to_json())
  assert run_record.recorded_config(str(tmp_path), []) == cfg
  again = run_record.recorded_config(str(tmp_path), ["eval.batch_size=7"])
  assert again.eval.batch_size == 7 and again.model.name == "tiny"
  (tmp_path / "config.json").write_text("{broken")
  with pytest.raises(ConfigError, match="config.json"):
    run_record.recorded_config(str(tmp_path), [])


def test_train_failure_is_recorded(tmp_path, monkeypatch):
  from estimator_cifar.engine import modes  # Imports TensorFlow.
  monkeypatch.delenv("TF_CONFIG", raising=False)
  model_dir = str(tmp_path / "run")
  with pytest.raises(DataError) as raised:
    modes.run(testutil.tiny_config(), model_dir, "train",
                  str(tmp_path / "no_data"))
  record = run_record.read(model_dir)
  assert record["status"] == "failed"
  assert record["error"] == str(raised.value)
  assert record["end_time"] is not None and record["final_step"] == 0


def _last_row(model_dir):
  return metrics_log.read(model_dir)[-1]


def _eval_cli(model_dir, *args):
  result = testutil.run_cli("--mode=eval", f"--model_dir={model_dir}", *args)
  assert result.returncode == 0, result.stderr[-3000:]
  return _last_row(model_dir)


@pytest.mark.slow
def test_eval_reproduces_recorded_accuracy(tmp_path, cifar10_dir, monkeypatch):
  """--mode=eval alone (no experiment, overrides or data_dir) gives the same
  figure as training's final eval: same data, model and EMA choice."""
  from estimator_cifar.engine import modes  # Imports TensorFlow.
  monkeypatch.delenv("TF_CONFIG", raising=False)
  model_dir = str(tmp_path / "run")
  cfg = testutil.tiny_config("train.steps=4", "ema.eval_with_ema=true",
                             "train.seed=3")
  result = modes.run(cfg, model_dir, "train_and_eval", cifar10_dir)
  trained = _last_row(model_dir)
  assert trained["global_step"] == 4

  record = run_record.read(model_dir)
  assert record["status"] == "finished" and record["final_step"] == 4
  assert record["final_metrics"]["accuracy"] == trained["accuracy"]
  assert record["data_dir"] == os.path.abspath(cifar10_dir)
  assert config_lib.from_dict(record["config"]) == cfg

  evaluated = _eval_cli(model_dir)
  assert evaluated["checkpoint"] == trained["checkpoint"] == "model.ckpt-4"
  assert evaluated["accuracy"] == trained["accuracy"] == result["accuracy"]
  assert evaluated["loss"] == trained["loss"]
  # The EMA choice matters at step 4, so the recorded one was used above.
  raw = _eval_cli(model_dir, "--params_override=ema.eval_with_ema=false")
  assert raw["loss"] != trained["loss"]
  # Evaluation is no train run: the record is untouched.
  assert run_record.read(model_dir) == record


@pytest.mark.slow
def test_resume_at_max_steps_still_evaluates(tmp_path, cifar10_dir,
                                             monkeypatch):
  """A run killed between its last checkpoint and its final eval gets that
  eval when resumed, although Estimator has nothing left to train."""
  from estimator_cifar.engine import modes  # Imports TensorFlow.
  monkeypatch.delenv("TF_CONFIG", raising=False)
  model_dir = str(tmp_path / "run")
  cfg = testutil.tiny_config("train.steps=2")
  modes.run(cfg, model_dir, "train", cifar10_dir)
  assert metrics_log.read(model_dir) == []
  result = modes.run(cfg, model_dir, "train_and_eval", cifar10_dir)
  rows = metrics_log.read(model_dir)
  assert [r["checkpoint"] for r in rows] == ["model.ckpt-2"]
  assert result["accuracy"] == rows[0]["accuracy"]
  record = run_record.read(model_dir)
  assert (record["status"], record["start_step"], record["final_step"],
          record["resumed"]) == ("finished", 2, 2, True)
  assert record["final_metrics"]["accuracy"] == rows[0]["accuracy"]
  assert [h["status"] for h in record["history"]] == ["finished"]
  assert record["history"][0]["mode"] == "train"
  # Once more: the row is reused, not evaluated again.
  modes.run(cfg, model_dir, "train_and_eval", cifar10_dir)
  assert len(metrics_log.read(model_dir)) == 1
