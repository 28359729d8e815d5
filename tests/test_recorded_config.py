"""export, predict and continuous_eval read the trained model_dir's config.json:
no --experiment or overrides to repeat."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.data import fake
from estimator_cifar.engine import modes
from estimator_cifar.rundir import metrics_log, recorded
from tests.testutil import run_cli, tiny_config

# Far from resnet_sgd's defaults: a restore with the experiment's own config
# (ResNet-20, EMA off for eval) would fail or give other numbers.
TRAINED = ["ema.decay=0.9", "ema.eval_with_ema=true", "data.image_size=28",
           "train.steps=4"]

# Every test here trains (or runs the CLI on) a tiny model.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar10_dir):
  model_dir = str(tmp_path_factory.mktemp("recorded") / "run")
  modes.run(tiny_config(*TRAINED), model_dir, "train", cifar10_dir)
  return model_dir


def _png_files(folder: str, data_dir: str, count: int) -> None:
  os.makedirs(folder)
  records = np.fromfile(os.path.join(data_dir, "cifar-10-batches-bin",
                                     "test_batch.bin"), np.uint8)
  images = records.reshape(-1, 3073)[:count, 1:].reshape(-1, 3, 32, 32)
  for i, image in enumerate(images.transpose(0, 2, 3, 1)):
    tf.io.write_file(os.path.join(folder, f"{i}.png"), tf.io.encode_png(image))


def test_setup_uses_the_recorded_config_with_overrides_on_top(trained):
  cfg, _ = recorded.setup("export", trained, None, ["eval.batch_size=7"], None)
  assert cfg.model.name == "tiny" and cfg.data.image_size == 28
  assert cfg.ema.eval_with_ema and cfg.eval.batch_size == 7
  cfg, _ = recorded.setup("train", trained, "resnet_sgd", [], None)
  assert cfg.model.name == "resnet", "train modes take the experiment"


def test_export_from_config_json_alone(trained):
  proc = run_cli("--mode=export", f"--model_dir={trained}", timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  path = proc.stdout.split("Exported: ", 1)[1].split()[0]
  serve = tf.saved_model.load(path).signatures["serving_default"]
  out = serve(images=tf.zeros([2, 32, 32, 3], tf.uint8))
  assert out["probabilities"].shape == (2, 10)
  assert "Using the config training recorded in" in proc.stderr


def test_predict_from_config_json_warns_about_another_experiment(
    trained, cifar10_dir, tmp_path):
  folder = str(tmp_path / "imgs")
  _png_files(folder, cifar10_dir, 3)
  proc = run_cli("--mode=predict", f"--model_dir={trained}",
                 "--experiment=cifar10_tutorial", f"--images={folder}",
                 "--output=json", "--top_k=1", timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads(proc.stdout)
  assert len(results) == 3
  assert all(r["predictions"][0]["label"] in fake.LABEL_NAMES_10 for r in results)
  assert "--experiment=cifar10_tutorial ignored" in proc.stderr
  assert "trained as resnet_sgd" in proc.stderr


def test_predict_overrides_still_apply(trained, tmp_path):
  image = str(tmp_path / "a.png")
  tf.io.write_file(image, tf.io.encode_png(np.zeros([32, 32, 3], np.uint8)))
  proc = run_cli("--mode=predict", f"--model_dir={trained}", f"--images={image}",
                 "--params_override=model.name=convnet", timeout=300)
  assert proc.returncode == 2
  assert "model.name: 'tiny' -> 'convnet'" in proc.stderr


def test_continuous_eval_from_config_json(trained):
  before = len(metrics_log.read(trained))
  proc = run_cli("--mode=continuous_eval", f"--model_dir={trained}",
                 timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = metrics_log.read(trained)
  assert len(rows) == before + 1 and rows[-1]["global_step"] == 4


def test_no_config_and_no_experiment_says_what_to_pass(tmp_path):
  proc = run_cli("--mode=export", f"--model_dir={tmp_path}", timeout=120)
  assert proc.returncode == 2
  assert "has no config.json" in proc.stderr and "--experiment" in proc.stderr
  assert not glob.glob(str(tmp_path / "*"))
