"""The model_dir contract (rundir), ModelParams, the modes table, tools.cli."""

import json
import os
import subprocess
import sys

import pytest
from absl import flags

from estimator_cifar import config as config_lib
from estimator_cifar import rundir
from estimator_cifar.engine import TRAIN_MODES, distribute
from estimator_cifar.errors import ConfigError
from estimator_cifar.rundir import checkpoint_check, run_record
from tests import testutil


@pytest.mark.parametrize("path, step", [
    ("/m/model.ckpt-1200", 1200), ("model.ckpt-0", 0),
    ("gs://b/run/model.ckpt-7", 7), ("model.ckpt", None),
    ("model.ckpt-12.index", None), ("model.ckpt-abc", None), (None, None),
    ("", None)])
def test_checkpoint_step(path, step):
  assert rundir.checkpoint_step(path) == step
  assert checkpoint_check.step_of(path or "x") == (-1 if step is None else step)


def test_state_checkpoint_reads_the_state_file(tmp_path):
  assert rundir.state_checkpoint(str(tmp_path)) is None
  (tmp_path / rundir.STATE_FILE).write_text(
      'model_checkpoint_path: "model.ckpt-30"\n'
      'all_model_checkpoint_paths: "model.ckpt-20"\n'
      'all_model_checkpoint_paths: "model.ckpt-30"\n')
  assert rundir.state_checkpoint(str(tmp_path)) == "model.ckpt-30"
  (tmp_path / rundir.STATE_FILE).write_text("garbage\n")
  assert rundir.state_checkpoint(str(tmp_path)) is None


@pytest.mark.parametrize("task_type, index, roles, chief", [
    (None, 0, (), True),
    ("chief", 0, ("chief", "worker"), True),
    ("master", 0, ("master", "worker"), True),
    ("worker", 0, ("chief", "worker"), False),
    ("worker", 0, ("worker",), True),
    ("worker", 1, ("worker",), False),
    ("evaluator", 0, ("chief",), False),
    ("ps", 0, ("ps", "chief", "worker"), False)])
def test_is_chief_is_one_rule_for_the_engine_and_the_run_record(
    tmp_path, monkeypatch, task_type, index, roles, chief):
  assert rundir.is_chief(task_type, index, roles) == chief
  if task_type is None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.read_tf_config() is None
  else:
    jobs = {role: ["h0:1", "h1:1"] for role in roles}
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": jobs, "task": {"type": task_type, "index": index}}))
    assert distribute.read_tf_config().is_chief == chief
  record = run_record.start(testutil.tiny_config(), str(tmp_path), "train",
                            None)
  assert (record is not None) == chief


def test_config_json_round_trip_and_errors(tmp_path):
  model_dir = str(tmp_path / "m")
  assert rundir.read_config(model_dir) is None
  cfg = testutil.tiny_config("train.steps=9")
  rundir.write_config(model_dir, cfg.to_json())
  assert sorted(os.listdir(model_dir)) == [rundir.CONFIG_FILE]  # No .tmp.
  assert config_lib.from_dict(rundir.read_config(model_dir)) == cfg
  with open(rundir.config_path(model_dir), "w") as f:
    f.write("{broken")
  with pytest.raises(ValueError):
    rundir.read_config(model_dir)


def test_the_cli_offers_every_mode_before_loading_tensorflow():
  out = subprocess.run(
      [sys.executable, "-c", "import sys; from estimator_cifar import run; "
       "print(run.FLAGS['mode'].parser.enum_values); "
       "print('tensorflow' in sys.modules)"],
      cwd=testutil.REPO_ROOT, env=testutil.subprocess_env(), capture_output=True,
      text=True, timeout=testutil.seconds(120), check=True).stdout.splitlines()
  modes = ["train_and_eval", "train", "eval", "continuous_eval", "calibrate",
           "export", "predict"]
  assert out == [str(modes), "False"]
  assert set(TRAIN_MODES) < set(modes)


@pytest.mark.parametrize("override, words", [
    ("summary.histogram_steps=-1", "summary.histogram_steps=-1 must be >= 0"),
    ("distribute.max_worker_delay_secs=-5", "max_worker_delay_secs=-5"),
    ("distribute.num_cpu_devices=2", "only serves distribute.strategy=mirrored"),
    ("train.trainable_scopes=[tiny/(conv]", "not a regular expression"),
    ("train.gradient_multipliers={tiny/[conv:2.0}", "not a regular expression")])
def test_validate_has_the_checks_that_need_no_tensorflow(override, words):
  with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
    testutil.tiny_config(override)


def test_model_params_accepts_a_dict_for_direct_callers():
  from estimator_cifar.model.model_fn import ModelParams
  cfg = testutil.tiny_config()
  params = ModelParams(cfg, 10, 12.5, 60)
  assert ModelParams.of(params) is params
  assert ModelParams.of({"config": cfg, "num_classes": 10,
                         "steps_per_epoch": 12.5, "max_steps": 60}) == params
  assert ModelParams(cfg, 10).max_steps == 1  # Export and predict.


def test_tool_flags_are_their_own_and_reset_between_calls(capsys):
  from tools import cli
  values = flags.FlagValues()
  flags.DEFINE_integer("steps", 5, "Steps.", flag_values=values)
  flags.DEFINE_bool("fast", False, "Fast.", flag_values=values)
  assert cli.parse(values, ["--steps=7", "--fast", "rest"], "Doc.") == ["rest"]
  assert (values.steps, values.fast) == (7, True)
  cli.parse(values, [], "Doc.")
  assert (values.steps, values.fast) == (5, False)  # Back to the defaults.
  with pytest.raises(SystemExit) as exit_info:
    cli.parse(values, ["--stepz=3"], "Doc.")
  assert exit_info.value.code == 2
  assert capsys.readouterr().err.startswith("error: ")
  with pytest.raises(SystemExit) as exit_info:
    cli.parse(values, ["--help"], "Doc line.")
  assert exit_info.value.code == 0
  assert "Doc line." in capsys.readouterr().out
