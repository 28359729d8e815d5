"""oneDNN kernels: set before TensorFlow loads on x86-64, a user's choice kept."""

import os
import platform
import subprocess
import sys

import pytest

from estimator_cifar import cpu_kernels
from tests import testutil

ENV = cpu_kernels.ENV


def test_unset_on_x86_64_before_tensorflow_is_set_to_1():
  environ = {}
  said = cpu_kernels.prefer_onednn(environ, "x86_64", modules={})
  assert environ == {ENV: "1"}
  assert "set by estimator_cifar" in said


@pytest.mark.parametrize("value", ["0", "1"])
def test_a_value_the_user_set_is_kept(value):
  environ = {ENV: value}
  said = cpu_kernels.prefer_onednn(environ, "x86_64", modules={})
  assert environ == {ENV: value}
  assert said == f"{ENV}={value}, as set in the environment"


def test_other_machines_keep_tensorflows_default():
  environ = {}
  said = cpu_kernels.prefer_onednn(environ, "aarch64", modules={})
  assert environ == {}
  assert "aarch64 is not x86-64" in said


def test_too_late_once_tensorflow_is_imported_and_says_so():
  environ = {}
  said = cpu_kernels.prefer_onednn(environ, "AMD64",
                                   modules={"tensorflow": object()})
  assert environ == {}
  assert "imported before estimator_cifar" in said


def _onednn_in_a_fresh_process(code, env_value=None):
  env = {k: v for k, v in os.environ.items() if k != ENV}
  if env_value is not None:
    env[ENV] = env_value
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  out = subprocess.run(
      [sys.executable, "-c", code + "\nfrom tensorflow.python.util import "
       "_pywrap_util_port as p; print('onednn', p.IsMklEnabled())"],
      env=env, cwd=testutil.REPO_ROOT, capture_output=True, text=True,
      timeout=testutil.seconds(120))
  assert out.returncode == 0, out.stderr[-2000:]
  return out.stdout.split()[-1] == "True"


@pytest.mark.skipif(platform.machine().lower() not in cpu_kernels.X86_64,
                    reason="oneDNN is turned on by the package on x86-64 only")
def test_tensorflow_really_runs_onednn_after_import_estimator_cifar():
  # On every x86-64 CPU, whatever TF's own default for it.
  assert _onednn_in_a_fresh_process("import estimator_cifar, tensorflow")
  # A user's TF_ENABLE_ONEDNN_OPTS=0 wins.
  assert not _onednn_in_a_fresh_process("import estimator_cifar, tensorflow",
                                        env_value="0")


def test_the_choice_is_logged_once(monkeypatch, caplog):
  monkeypatch.setattr(cpu_kernels, "_logged", False)
  with caplog.at_level("INFO"):
    cpu_kernels.log_once()
    cpu_kernels.log_once()
  lines = [r.getMessage() for r in caplog.records if "CPU kernels" in r.getMessage()]
  assert lines == [f"CPU kernels: {cpu_kernels.CHOICE}."]
