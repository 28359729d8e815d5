"""Running out of memory, anywhere, is one `error:` naming the settings that
size memory, likeliest first; never a traceback."""

import subprocess
import sys

import pytest
import tensorflow as tf

from estimator_cifar import errors
from tests.testutil import REPO_ROOT, TINY, seconds, subprocess_env

# The batch is refused by validate()'s batch-memory limit unless raised: the
# test needs TensorFlow itself to run out of memory.
BEYOND_SANITY_LIMIT = {"ESTIMATOR_CIFAR_MAX_BATCH_GIB": "1000"}
SETTINGS = {"train.batch_size": 20000, "eval.batch_size": 500,
            "model.depth": 20, "model.width": 1}

# Runs the CLI under an address-space limit of the memory TensorFlow's import
# took plus argv[1] MiB: real allocations then fail as they would on a small
# machine.
LIMITED_CLI = """
import re, resource, sys
import tensorflow
from estimator_cifar import run
status = open("/proc/self/status").read()
used = int(re.search(r"VmSize:\\s+(\\d+) kB", status).group(1)) * 1024
headroom = int(sys.argv.pop(1)) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (used + headroom, resource.RLIM_INFINITY))
run.cli()
"""


@pytest.mark.slow
def test_cli_out_of_memory_is_one_error_naming_the_batch_size(tmp_path):
  overrides = TINY + ["train.batch_size=20000", "train.steps=2",
                      "data.name=synthetic", "data.synthetic_train_size=20000"]
  done = subprocess.run(
      [sys.executable, "-c", LIMITED_CLI, "1500", "--experiment=resnet_sgd",
       f"--model_dir={tmp_path / 'm'}", "--mode=train",
       "--params_override=" + ",".join(overrides)],
      cwd=REPO_ROOT, env=subprocess_env(**BEYOND_SANITY_LIMIT), capture_output=True, text=True,
      timeout=seconds(180))
  assert done.returncode == 2, done.stderr[-3000:]
  assert "Traceback" not in done.stderr
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith("error: Out of memory (ResourceExhaustedError: OOM "
                         "when allocating tensor with shape[20000,"), last
  assert ("likeliest first: train.batch_size=20000, eval.batch_size=16, "
          "model.depth=20, model.width=1. Lower train.batch_size") in last


def test_python_memory_error_names_the_network_first():
  with pytest.raises(errors.OutOfMemoryError) as e:
    with errors.memory_errors_named(SETTINGS):
      raise MemoryError()
  assert str(e.value) == (
      "Out of memory (MemoryError: no details). The settings that size "
      "memory, likeliest first: model.depth=20, train.batch_size=20000, "
      "eval.batch_size=500, model.width=1. Lower model.depth with "
      "--params_override, or run where more memory is free.")
  assert e.value.exit_code == 2


def test_wrapped_tensorflow_oom_names_the_batch_of_its_shape():
  oom = tf.errors.ResourceExhaustedError(
      None, None, "Graph execution error:\n\nOOM when allocating tensor with "
      "shape[500,16,32,32] and type float\n\t [[{{node conv}}]]")
  try:
    try:
      raise oom
    except tf.errors.ResourceExhaustedError as inner:
      raise RuntimeError("evaluation failed") from inner
  except RuntimeError as outer:
    error = errors.out_of_memory(outer, SETTINGS)
  assert "(ResourceExhaustedError: OOM when allocating tensor with " \
      "shape[500,16,32,32] and type float)" in str(error)
  assert "likeliest first: eval.batch_size=500, train.batch_size=20000" in str(error)
  assert errors.out_of_memory(ValueError("no"), SETTINGS) is None
