"""Throwaway virtualenvs outside this stack (newer Python, no TensorFlow 2.15),
cached between test runs so that a second run costs seconds.

Each environment lives in ~/.cache/estimator_cifar/test-venvs/<key>, where the
key hashes the interpreter and the requirements: a changed pin builds afresh.
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "estimator_cifar",
                         "test-venvs")
READY_MARK = ".ready"  # Written last: a half-built environment is rebuilt.
PIP_TIMEOUT_SECS = 1800


def newer_python(minimum: tuple[int, int] = (3, 12)) -> str:
  """A Python interpreter >= `minimum` (pyenv's, else on PATH), or skips."""
  candidates = sorted(glob.glob(os.path.expanduser(
      "~/.pyenv/versions/3.1[2-9]*/bin/python3")), reverse=True)
  candidates += [shutil.which(f"python3.{m}") or "" for m in (13, 12)]
  for path in candidates:
    if path and os.access(path, os.X_OK):
      version = subprocess.run(
          [path, "-c", "import sys; print(*sys.version_info[:2])"],
          capture_output=True, text=True).stdout.split()
      if version and tuple(map(int, version)) >= minimum:
        return path
  pytest.skip(f"no Python >= {minimum[0]}.{minimum[1]} found (pyenv or PATH)")


def cached_venv(python: str, requirements: list[str]) -> str:
  """The python of a virtualenv from `python` with `requirements`, built once.

  Skips the test, with the reason, when pip cannot reach a package index; any
  other failure to build is a test failure.
  """
  key = hashlib.sha256("\n".join([os.path.realpath(python)] + requirements)
                       .encode()).hexdigest()[:16]
  venv = os.path.join(CACHE_DIR, key)
  venv_python = os.path.join(venv, "bin", "python")
  if os.path.isfile(os.path.join(venv, READY_MARK)):
    return venv_python
  shutil.rmtree(venv, ignore_errors=True)
  os.makedirs(CACHE_DIR, exist_ok=True)
  subprocess.run([python, "-m", "venv", venv], check=True)
  result = subprocess.run(
      [venv_python, "-m", "pip", "install", "-q", *requirements],
      capture_output=True, text=True, timeout=PIP_TIMEOUT_SECS)
  if result.returncode != 0:
    shutil.rmtree(venv, ignore_errors=True)
    unreachable = ("No matching distribution", "Could not find a version",
                   "NewConnectionError", "Failed to establish")
    if any(text in result.stderr for text in unreachable):
      pytest.skip(f"no package index reachable for {requirements}: "
                  f"{result.stderr.strip().splitlines()[-1]}")
    raise AssertionError(f"pip install {requirements} failed:\n{result.stderr}")
  open(os.path.join(venv, READY_MARK), "w").close()
  return venv_python


if __name__ == "__main__":  # Pre-build: python -m tests.outside_venvs REQ...
  print(cached_venv(newer_python(), sys.argv[1:]))
