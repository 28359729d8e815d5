"""Exports run outside this stack: the ONNX file under onnxruntime on Python
>= 3.12 without TensorFlow, running docs/serving.md's own snippet, and the
SavedModel in the newest TensorFlow with Keras 3. Each builds a throwaway
virtualenv once (tests/outside_venvs.py) and reuses it on later runs."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.engine import export, modes
from tests import outside_venvs
from tests.testutil import REPO_ROOT, seconds, tiny_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # A first run pip-installs.

ORT_REQUIREMENTS = ["onnxruntime==1.32.0", "numpy"]
NEWEST_TF_REQUIREMENTS = ["tensorflow==2.21.0"]
SERVING_DOC = os.path.join(REPO_ROOT, "docs", "serving.md")


def doc_snippet(name: str) -> str:
  """The ```python block after `<!-- snippet: name -->` in docs/serving.md."""
  text = open(SERVING_DOC).read()
  found = re.search(rf"<!-- snippet: {name} -->\s*```python\n(.*?)```", text, re.S)
  assert found, f"docs/serving.md has no snippet {name}"
  return found.group(1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, cifar10_dir):
  """(export folder with model.onnx, images, the SavedModel's logits here)."""
  pytest.importorskip("tf2onnx", reason="the 'export' extra is not installed")
  model_dir = str(tmp_path_factory.mktemp("outside") / "run")
  cfg = tiny_config("train.steps=10", "export.formats=[onnx]")
  modes.run(cfg, model_dir, "train", cifar10_dir)
  path = export.export_newest(cfg, model_dir, cifar10_dir)
  images = np.random.RandomState(5).randint(0, 256, [8, 32, 32, 3]).astype(np.uint8)
  logits = tf.saved_model.load(path).signatures["serving_default"](
      images=tf.constant(images))["logits"].numpy()
  return path, images, logits


def test_onnx_runs_on_newer_python_without_tensorflow_as_documented(
    exported, tmp_path):
  path, images, logits = exported
  python = outside_venvs.cached_venv(outside_venvs.newer_python(),
                                     ORT_REQUIREMENTS)
  shutil.copy(os.path.join(path, "model.onnx"), tmp_path)
  np.save(tmp_path / "images.npy", images)
  check = ("\nimport importlib.util, sys\n"
           "assert importlib.util.find_spec('tensorflow') is None\n"
           "print(sys.version_info[:2] >= (3, 12))\n"
           "np.save('out_logits.npy', logits)\n")
  done = subprocess.run([python, "-c", doc_snippet("onnx") + check],
                        cwd=tmp_path, capture_output=True, text=True,
                        timeout=seconds(120))
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stdout.splitlines()[-1] == "True"
  np.testing.assert_allclose(np.load(tmp_path / "out_logits.npy"), logits,
                             atol=1e-4)


def test_saved_model_loads_in_newest_tensorflow_and_keras_3(exported, tmp_path):
  path, images, logits = exported
  python = outside_venvs.cached_venv(outside_venvs.newer_python(),
                                     NEWEST_TF_REQUIREMENTS)
  np.save(tmp_path / "images.npy", images)
  check = ("\nimport keras\n"
           "assert tf.__version__.startswith('2.21') and "
           "keras.__version__.startswith('3.')\n"
           "np.save('out_logits.npy', out['logits'].numpy())\n"
           "np.save('out_layer_logits.npy', layer_out['logits'].numpy())\n")
  done = subprocess.run(
      [python, "-c", doc_snippet("keras3") + check, path], cwd=tmp_path,
      capture_output=True, text=True, timeout=seconds(300),
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=""))
  assert done.returncode == 0, done.stderr[-3000:]
  for name in ("out_logits.npy", "out_layer_logits.npy"):
    np.testing.assert_allclose(np.load(tmp_path / name), logits, atol=1e-5)
