"""export.formats: ONNX and TFLite beside the SavedModel, parity checked at
export time into export_info.json, failures as one error with nothing that
looks valid left behind."""

import glob
import os
import sys

import numpy as np
import pytest

from estimator_cifar import Predictor
from estimator_cifar import config as config_lib
from estimator_cifar.engine import export, export_dirs, export_formats, modes
from estimator_cifar.errors import ConfigError
from estimator_cifar.extras import MissingExtraError
from tests.testutil import run_cli, tiny_config

pytestmark = pytest.mark.slow  # Trains a tiny model, converts it.
pytest.importorskip("tf2onnx", reason="the 'export' extra is not installed")

FORMATS = "export.formats=[onnx,tflite]"
# Seeded, and trained until its logits part clearly: int8 then keeps the top
# class of >= 99% of the images (80 steps kept 98%).
TRAINED = ["train.steps=200", "optimizer.learning_rate=0.2", "train.seed=1"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, cifar10_dir):
  path = str(tmp_path_factory.mktemp("formats") / "run")
  modes.run(tiny_config(*TRAINED), path, "train", cifar10_dir)
  return path


def exported(model_dir, *overrides, data_dir=None):
  cfg = tiny_config(*TRAINED, *overrides)
  return export.export_newest(cfg, model_dir, data_dir)


def test_onnx_and_tflite_match_the_saved_model(model_dir, cifar10_dir):
  path = exported(model_dir, FORMATS, data_dir=cifar10_dir)
  formats = export_dirs.read_info(path)["formats"]
  assert set(formats) == {"onnx", "tflite"}
  for name, figures in formats.items():
    assert os.path.isfile(os.path.join(path, figures["file"])), name
    assert figures["images"] == 50  # The fixture's whole test split.
    assert figures["max_abs_logit_diff"] <= export_formats.FLOAT_MAX_LOGIT_DIFF
    assert figures["top1_agreement"] == 1.0
  # Predictor on the ONNX file alone: the class names travel inside it.
  images = np.random.RandomState(3).randint(0, 256, [16, 32, 32, 3]).astype(np.uint8)
  onnx_out = Predictor(os.path.join(path, "model.onnx"))(images)
  tf_out = Predictor(model_dir)(images)
  assert onnx_out.class_names == tf_out.class_names
  np.testing.assert_allclose(onnx_out.probabilities, tf_out.probabilities, atol=1e-5)


def test_int8_tflite_reports_accuracy_against_float(model_dir, cifar10_dir):
  path = exported(model_dir, "export.formats=[tflite]",
                  "export.tflite_quantize=int8", data_dir=cifar10_dir)
  figures = export_dirs.read_info(path)["formats"]["tflite"]
  assert figures["quantize"] == "int8"
  assert figures["top1_agreement"] >= export_formats.QUANTIZED_MIN_AGREEMENT
  assert 0 <= figures["accuracy"] <= 1 and 0 <= figures["float_accuracy"] <= 1
  assert abs(figures["accuracy"] - figures["float_accuracy"]) <= 0.02


def test_a_format_past_its_tolerance_fails_and_leaves_no_file(
    model_dir, monkeypatch):
  monkeypatch.setattr(export_formats, "FLOAT_MAX_LOGIT_DIFF", -1.0)
  with pytest.raises(export_formats.ExportFormatError,
                     match=r"export.formats=onnx: the onnx model disagrees"):
    exported(model_dir, "export.formats=[onnx]")
  path = export_dirs.finished_exports(os.path.join(model_dir, "export"))[-1]
  assert not os.path.exists(os.path.join(path, "model.onnx"))
  assert os.path.isfile(os.path.join(path, "saved_model.pb"))  # Still lands.
  assert "disagrees" in export_dirs.read_info(path)["formats"]["onnx"]["error"]


def test_missing_converter_names_the_extra(model_dir, monkeypatch):
  monkeypatch.setitem(sys.modules, "tf2onnx", None)  # As if not installed.
  with pytest.raises(MissingExtraError,
                     match=r"pip install 'estimator_cifar\[export\]'"):
    exported(model_dir, "export.formats=[onnx]")


def test_unknown_format_lists_the_formats(model_dir):
  with pytest.raises(ConfigError, match="are: onnx, tflite"):
    config_lib.resolve("resnet_sgd", ["export.formats=[onxx]"])
  done = run_cli("--mode=export", f"--model_dir={model_dir}",
                 "--params_override=export.formats=[saved_model]", timeout=120)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines()[-1].startswith(
      "error: export.formats has unknown 'saved_model' (the SavedModel is "
      "always written)")


def test_a_model_the_converter_cannot_take_names_the_format_and_op(
    model_dir, monkeypatch):
  import tf2onnx

  def refuse(*args, **kwargs):
    raise ValueError("Unsupported ops: Counter({'FancyOp': 1})\nmore detail")

  monkeypatch.setattr(tf2onnx.convert, "from_graph_def", refuse)
  with pytest.raises(export_formats.ExportFormatError,
                     match=r"export.formats=onnx: tf2onnx cannot convert this "
                           r"model: ValueError: Unsupported ops: .*FancyOp"):
    exported(model_dir, "export.formats=[onnx]")


def test_train_and_eval_exports_carry_the_formats_and_their_failure(
    tmp_path, cifar10_dir, monkeypatch):
  cfg = tiny_config("eval.export_best=true", "export.formats=[onnx]")
  good = str(tmp_path / "good")
  modes.run(cfg, good, "train_and_eval", cifar10_dir)
  (best,) = export_dirs.finished_exports(os.path.join(good, "export", "best"))
  assert export_dirs.read_info(best)["formats"]["onnx"]["top1_agreement"] == 1.0
  monkeypatch.setattr(export_formats, "FLOAT_MAX_LOGIT_DIFF", -1.0)
  bad = str(tmp_path / "bad")
  with pytest.raises(export_formats.ExportFormatError, match="disagrees"):
    modes.run(cfg, bad, "train_and_eval", cifar10_dir)
  assert glob.glob(os.path.join(bad, "model.ckpt-6.index"))  # Training kept.
  assert not glob.glob(os.path.join(bad, "export", "best", "*", "model.onnx"))
