"""Flags and paths: `~`/`$VARS` expanded everywhere, flag mistakes as `error:`."""

import json
import os
import subprocess

import numpy as np
import pytest

from estimator_cifar.data import fake
from estimator_cifar.errors import CheckpointError, DataError
from tests.testutil import (TINY, cli_command, png_header, seconds,
                            subprocess_env, tiny_config)
from tests import testutil


def run_in(cwd, *args, env=None, timeout=300):
  """`python -m estimator_cifar.run ARGS` with `cwd` as working directory."""
  return subprocess.run(cli_command(*args), cwd=cwd,
                        env=subprocess_env(**(env or {})), capture_output=True, text=True,
                        timeout=seconds(timeout))


def error_line(proc) -> str:
  assert "FATAL" not in proc.stderr, proc.stderr[-2000:]
  return testutil.error_line(proc.returncode, proc.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("flag, words", [
    ("--lr=0.1", ["Unknown flag --lr=0.1",
                  "--params_override=optimizer.learning_rate=0.1"]),
    ("--experimnt=resnet_sgd", ["Unknown flag --experimnt", "--experiment"]),
    ("--top_k=abc", ["--top_k", "abc", "an integer", "--top_k=5"]),
    ("--mode=trian", ["--mode", "train_and_eval"]),
    ("--model_dir", ["--model_dir", "Missing value"]),
])
def test_bad_flag_is_one_paragraph_and_exit_2(flag, words, tmp_path):
  line = error_line(run_in(tmp_path, "--experiment=resnet_sgd", flag,
                           timeout=120))
  for word in words:
    assert word in line, line


@pytest.mark.slow
def test_home_and_variables_expand_in_path_flags(tmp_path):
  home, work = tmp_path / "home", tmp_path / "work"
  work.mkdir()
  fake.write_cifar10(str(home / "cifar"), train_per_file=8, test=16)
  env = {"HOME": str(home), "RUNS": str(tmp_path / "runs")}
  proc = run_in(work, "--experiment=resnet_sgd", "--data_dir=~/cifar",
                "--model_dir=$RUNS/first", "--mode=train",
                "--params_override=" + ",".join(TINY + ["train.steps=2"]),
                env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  model_dir = tmp_path / "runs" / "first"
  assert (model_dir / "model.ckpt-2.index").is_file()
  record = json.loads((model_dir / "run_info.json").read_text())
  assert record["data_dir"] == str(home / "cifar")
  assert os.listdir(work) == [], "no folder named '~' or '$RUNS'"

  # --warm_start_from and --experiments_dir expand too.
  proc = run_in(work, "--experiment=resnet_sgd", "--data_dir=~/cifar",
                "--model_dir=$RUNS/second", "--mode=train",
                "--warm_start_from=~/no_such_run",
                "--params_override=" + ",".join(TINY + ["train.steps=2"]),
                env=env)
  assert f"--warm_start_from={home}/no_such_run is neither" in error_line(proc)
  (home / "exps").mkdir()
  (home / "exps" / "mine.py").write_text('"""Mine."""\n')
  proc = run_in(work, "--list_experiments", "--experiments_dir=~/exps",
                env=env, timeout=120)
  assert proc.returncode == 0 and "mine" in proc.stdout.split()
  assert os.listdir(work) == []


def test_images_and_config_paths_expand(tmp_path, monkeypatch):
  from estimator_cifar.engine import predict, warm_start
  monkeypatch.setenv("HOME", str(tmp_path))
  monkeypatch.setenv("IMAGES", str(tmp_path / "imgs"))
  (tmp_path / "imgs").mkdir()
  png = png_header(32, 32)
  (tmp_path / "imgs" / "a.png").write_bytes(png)
  (tmp_path / "b.png").write_bytes(png)
  assert predict.image_paths("$IMAGES,~/b.png") == [
      str(tmp_path / "imgs" / "a.png"), str(tmp_path / "b.png")]

  cfg = tiny_config("warm_start.values_npz=~/init.npz")
  with pytest.raises(CheckpointError, match=f"{tmp_path}/init.npz does not"):
    warm_start.settings(cfg, None, str(tmp_path / "m"), 10)
  np.savez(tmp_path / "init.npz", **{"tiny/no_such_variable": np.zeros(3)})
  with pytest.raises(CheckpointError, match="no_such_variable"):
    warm_start.settings(cfg, None, str(tmp_path / "m"), 10)


def test_tfds_dir_expands(tmp_path, monkeypatch):
  pytest.importorskip("tensorflow_datasets")
  from estimator_cifar.data import tfds_source
  monkeypatch.setenv("TFDS_HOME", str(tmp_path))
  cfg = tiny_config("data.source=tfds", "data.tfds_dir=$TFDS_HOME/tfds")
  with pytest.raises(DataError) as e:
    tfds_source.get_source(cfg)
  assert f"not prepared under {tmp_path}/tfds" in str(e.value)


@pytest.mark.parametrize("flag", ["--split=validation", "--images=a.png",
                                  "--warm_start_from=/tmp/x"])
def test_a_flag_another_mode_reads_is_refused(capsys, flag):
  code, _, err = testutil.cli_in_process(
      capsys, "--mode=eval" if "split" not in flag
      else "--mode=predict", "--model_dir=/tmp/none", flag)
  assert code == 2 and err.startswith("error: --"), err
  assert "is read by --mode=" in err and "drop --" in err, err
