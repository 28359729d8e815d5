"""End to end: run.py trains, checkpoints, evaluates and logs; errors are clear."""

import glob
import json
import os

import pytest
import tensorflow as tf

from estimator_cifar.rundir import metrics_log
from estimator_cifar.engine import modes
from tests.testutil import TINY, run_cli, tiny_config


def test_train_and_eval_writes_everything(cifar10_dir, tmp_path):
  model_dir = str(tmp_path / "run")
  proc = run_cli("--experiment=resnet_sgd", f"--model_dir={model_dir}",
                 f"--data_dir={cifar10_dir}",
                 "--params_override=" + ",".join(TINY))
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Checkpoint at the final step, with model, BN and EMA variables.
  ckpt = tf.train.latest_checkpoint(model_dir)
  assert ckpt.endswith("model.ckpt-6")
  names = dict(tf.train.list_variables(ckpt))
  assert names["global_step"] == []
  assert "tiny/bn/moving_mean" in names
  assert "tiny/conv/kernel/ExponentialMovingAverage" in names
  # Events for train and eval, and the final config.
  assert glob.glob(os.path.join(model_dir, "events.out.tfevents.*"))
  assert glob.glob(os.path.join(model_dir, "eval", "events.out.tfevents.*"))
  with open(os.path.join(model_dir, "config.json")) as f:
    saved = json.load(f)
  assert saved["model"]["name"] == "tiny" and saved["train"]["steps"] == 6
  rows = metrics_log.read(model_dir)
  assert rows[-1]["global_step"] == 6
  assert rows[-1]["checkpoint"] == "model.ckpt-6"
  assert 0 <= rows[-1]["accuracy"] <= rows[-1]["top_5_accuracy"] <= 1
  # Tags are exact (no "_1" suffixes) and the tools read the run back.
  from tools import run_records
  scalars = run_records.read_scalars(model_dir)
  assert {"learning_rate", "loss", "losses/cross_entropy"} <= set(scalars)
  assert run_records.run_summary(model_dir)["experiment"] == "resnet_sgd"
  # The one-line summary closes the run.
  assert "Done: resnet_sgd mode=train_and_eval step=6" in proc.stdout

  # --mode=eval on the same model_dir reproduces the figure and appends a row.
  proc = run_cli("--experiment=resnet_sgd", f"--model_dir={model_dir}",
                 f"--data_dir={cifar10_dir}", "--mode=eval",
                 "--params_override=" + ",".join(TINY))
  assert proc.returncode == 0, proc.stderr[-3000:]
  again = metrics_log.read(model_dir)
  assert len(again) == len(rows) + 1
  assert again[-1]["accuracy"] == rows[-1]["accuracy"]
  assert not os.path.exists(os.path.join(model_dir, "eval", "config.json"))


@pytest.mark.parametrize("args, words", [
    (["--experiment=resnet_sgd", "--params_override=train.no_such_key=1"],
     ["train.no_such_key"]),
    (["--experiment=resnet_sgd", "--params_override=train.steps=abc"],
     ["train.steps", "integer"]),
    (["--experiment=no_such_exp"], ["no_such_exp", "resnet_sgd"]),
])
def test_cli_errors_are_one_paragraph(args, words, tmp_path):
  proc = run_cli(*args, f"--model_dir={tmp_path / 'm'}", timeout=60)
  assert proc.returncode == 2
  assert "Traceback" not in proc.stderr
  error = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
  assert len(error) == 1
  for word in words:
    assert word in error[0]
  assert not os.path.exists(tmp_path / "m"), "nothing starts on a bad override"


def test_list_experiments():
  proc = run_cli("--list_experiments", timeout=60)
  assert proc.returncode == 0
  lines = dict(l.split(None, 1) for l in proc.stdout.splitlines() if l.strip())
  assert "resnet_sgd" in lines and "ResNet-20" in lines["resnet_sgd"]
  assert "cifar10_tutorial" in lines


def test_resnet8_learns_easy_data(cifar10_dir, tmp_path):
  cfg = tiny_config("model.name=resnet", "model.depth=8", "train.steps=150",
                    "optimizer.learning_rate=0.1",
                    "ema.decay=0", "schedule.name=constant",
                    "checkpoint.save_secs=3600", "eval.throttle_secs=3600")
  result = modes.run(cfg, str(tmp_path / "m"), "train_and_eval", cifar10_dir)
  assert result["global_step"] == 150
  assert result["accuracy"] >= 0.95, result  # Chance is 0.1.
