"""Fixtures: small CIFAR datasets in the real binary layouts, written once."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from estimator_cifar.data import fake  # noqa: E402
from tests import testutil  # noqa: E402


def pytest_collection_modifyitems(config, items):
  """Scales each test's time limit (pytest.ini's `timeout`, or its own
  `timeout` marker) by testutil.TIME_SCALE, like every limit in the tests."""
  if testutil.TIME_SCALE == 1 or not config.pluginmanager.hasplugin("timeout"):
    return
  default = float(config.getini("timeout") or 0)
  for item in items:
    marker = item.get_closest_marker("timeout")
    base = marker.args[0] if marker and marker.args else default
    if base:
      item.add_marker(pytest.mark.timeout(testutil.seconds(base)), append=False)


@pytest.fixture(scope="session")
def cifar10_dir(tmp_path_factory):
  """data_dir with an easy CIFAR-10-layout dataset: 200 train, 50 test."""
  data_dir = str(tmp_path_factory.mktemp("cifar10"))
  fake.write_cifar10(data_dir, train_per_file=40, test=50, easy=True)
  return data_dir


@pytest.fixture(scope="session")
def cifar100_dir(tmp_path_factory):
  """data_dir with an easy CIFAR-100-layout dataset: 200 train, 50 test."""
  data_dir = str(tmp_path_factory.mktemp("cifar100"))
  fake.write_cifar100(data_dir, train=200, test=50, easy=True)
  return data_dir


@pytest.fixture(autouse=True)
def _absl_logs_reach_caplog(caplog):
  """In-process flag parsing (tests of run.py) leaves absl's logger at WARNING;
  tests that read log lines need INFO whatever ran before them."""
  import logging
  caplog.set_level(logging.INFO, logger="absl")


@pytest.fixture(autouse=True)
def _op_determinism_off_after_test():
  """A seeded run turns TF's op determinism on, process-wide (model_fn.
  configure_determinism); with it on, any unseeded random op raises. Reset it
  after each test so test order does not matter."""
  yield
  if "tensorflow" in sys.modules:
    from estimator_cifar.model.model_fn import configure_determinism
    configure_determinism(0)
