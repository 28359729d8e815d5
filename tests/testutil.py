"""Shared test helpers: tiny configs, real-format data, running the CLI."""

import os
import subprocess
import sys

from estimator_cifar import config as config_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Small and fast: a tiny model, small batches, no periodic evals.
TINY = ["model.name=tiny", "train.batch_size=16", "eval.batch_size=16",
        "summary.save_steps=5", "log.every_steps=5", "train.steps=6",
        "model.bn_momentum=0.9",
        # SavedModels at every eval cost ~0.6 s of CPU each; test_export turns
        # them back on where it checks them.
        "eval.export_best=false", "eval.export_latest=0"]


def tiny_config(*overrides: str, experiment: str = "resnet_sgd"):
  """A validated config from `experiment` with TINY and then `overrides`."""
  return config_lib.resolve(experiment, [",".join(TINY + list(overrides))])


def run_cli(*args: str, timeout: float = 300, env: dict | None = None):
  """Runs `python -m estimator_cifar.run ARGS` from the repo root."""
  full_env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2",
                  PYTHONUNBUFFERED="1")
  full_env.update(env or {})
  return subprocess.run([sys.executable, "-m", "estimator_cifar.run", *args],
                        cwd=REPO_ROOT, env=full_env, capture_output=True,
                        text=True, timeout=timeout)
