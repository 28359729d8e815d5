"""End to end: run.py trains, checkpoints, evaluates and logs; errors are clear."""

import dataclasses
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import config as config_lib
from estimator_cifar.rundir import metrics_log
from estimator_cifar.engine import modes
from tests.testutil import (CONSTANT_LR, TINY, cli_in_process, error_line, run_cli,
                            tiny_config)


@pytest.mark.slow
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
  error = error_line(proc.returncode, proc.stderr)
  for word in words:
    assert word in error
  assert not os.path.exists(tmp_path / "m"), "nothing starts on a bad override"


def test_list_experiments():
  proc = run_cli("--list_experiments", timeout=60)
  assert proc.returncode == 0
  lines = dict(l.split(None, 1) for l in proc.stdout.splitlines() if l.strip())
  assert "resnet_sgd" in lines and "ResNet-20" in lines["resnet_sgd"]
  assert "cifar10_tutorial" in lines


def test_list_params_prints_every_field_with_the_overrides(tmp_path):
  proc = run_cli("--experiment=resnet_sgd", "--list_params",
                 f"--model_dir={tmp_path / 'm'}", "--params_override="
                 "train.steps=7,model.name=tiny,schedule.boundaries_epochs=[3,5]",
                 timeout=60)
  assert proc.returncode == 0, proc.stderr[-3000:]
  # `key = value  (type) meaning`: the value before the two spaces.
  listed = {key: rest.split("  (", 1)[0] for key, rest in
            (line.split(" = ", 1) for line in proc.stdout.splitlines())}
  default = config_lib.load_experiment("resnet_sgd")
  fields = []
  for section in dataclasses.fields(default):
    value = getattr(default, section.name)
    fields += ([f"{section.name}.{f.name}" for f in dataclasses.fields(value)]
               if dataclasses.is_dataclass(value) else [section.name])
  assert list(listed) == fields  # Every field once, in the config's order.
  assert listed["train.steps"] == "7" and listed["model.name"] == "'tiny'"
  assert listed["schedule.boundaries_epochs"] == "[3.0, 5.0]"
  assert listed["optimizer.name"] == repr(default.optimizer.name)
  assert not os.path.exists(tmp_path / "m")  # Nothing runs.


@pytest.mark.parametrize("mode", ["eval", "export", "predict"])
def test_modes_that_need_a_checkpoint_say_so(mode, tmp_path, capsys, cifar10_dir):
  model_dir = tmp_path / "untrained"
  model_dir.mkdir()
  image = str(tmp_path / "a.png")
  tf.io.write_file(image, tf.io.encode_png(np.zeros([32, 32, 3], np.uint8)))
  message = error_line(*cli_in_process(
      capsys, "--experiment=resnet_sgd", f"--mode={mode}",
      f"--model_dir={model_dir}", f"--data_dir={cifar10_dir}",
      *([f"--images={image}"] if mode == "predict" else []),
      "--params_override=" + ",".join(TINY))[::2])
  assert message == (
      f"error: --mode={mode} found no checkpoint in {model_dir}. Train first "
      "(--mode=train_and_eval) or point --model_dir at a trained run.")
  assert os.listdir(model_dir) == []  # Nothing written into it.


@pytest.mark.slow
def test_train_steps_0_trains_train_epochs_over_the_data(cifar10_dir, tmp_path):
  from estimator_cifar.engine import estimator_setup
  cfg = tiny_config("train.steps=0", "train.epochs=0.2")
  plan = estimator_setup.make_plan(cfg, cifar10_dir)
  # 200 training images in batches of 16; 0.2 epochs is 2.5 steps, rounded up.
  assert plan.steps_per_epoch == 200 / 16 and plan.max_steps == 3
  model_dir = str(tmp_path / "m")
  modes.run(cfg, model_dir, "train", cifar10_dir)
  assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-3")


@pytest.mark.slow
def test_resnet8_learns_easy_data(cifar10_dir, tmp_path):
  cfg = tiny_config("model.name=resnet", "model.depth=8", "train.steps=150",
                    "train.seed=1",  # Seeded: the threshold must not flake.
                    "optimizer.learning_rate=0.1",
                    "ema.decay=0", *CONSTANT_LR,
                    "checkpoint.save_secs=3600", "eval.throttle_secs=3600")
  result = modes.run(cfg, str(tmp_path / "m"), "train_and_eval", cifar10_dir)
  assert result["global_step"] == 150
  assert result["accuracy"] >= 0.95, result  # Chance is 0.1.
