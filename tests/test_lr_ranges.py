"""The learning-rate ranges table and the warning for a rate far outside it."""

import pytest

from estimator_cifar import config as config_lib
from estimator_cifar.model import lr_ranges
from tests.testutil import OPTIMIZER_RATES, tiny_config


def test_every_optimizer_has_a_range_holding_its_suggestion():
  assert set(lr_ranges.WORKING_RANGES) == set(config_lib.OPTIMIZER_NAMES)
  for name, (low, high, suggested) in lr_ranges.WORKING_RANGES.items():
    assert 0 < low <= suggested <= high, name


def test_the_rates_the_training_tests_use_are_in_range():
  for name, rate in OPTIMIZER_RATES.items():
    assert lr_ranges.out_of_range_message(name, rate) is None, (name, rate)


@pytest.mark.parametrize("name, rate, usual", [
    ("adam", 0.1, "1e-05 to 0.01"),
    ("ftrl", 0.5, "0.001 to 0.2"),
    ("adadelta", 0.001, "0.1 to 10"),
])
def test_a_rate_far_outside_warns_with_the_usual_range(name, rate, usual,
                                                       caplog):
  cfg = tiny_config(f"optimizer.name={name}", f"optimizer.learning_rate={rate}",
                    "optimizer.scale_lr_with_batch=false")
  message = lr_ranges.warn_if_outside(cfg)
  assert message and usual in message
  assert f"optimizer.name={name}" in message
  assert message in caplog.text
  assert any(r.levelname == "WARNING" for r in caplog.records)


def test_default_recipe_does_not_warn(caplog):
  assert lr_ranges.warn_if_outside(tiny_config()) is None
  assert "usual range" not in caplog.text


def test_the_check_uses_the_batch_scaled_rate():
  # 0.002 at batch 128 is fine for adam; scaled to batch 1024 it is 0.016.
  cfg = tiny_config("optimizer.name=adam", "optimizer.learning_rate=0.002",
                    "optimizer.scale_lr_with_batch=true",
                    "train.batch_size=1024")
  assert "0.016" in lr_ranges.out_of_range_message(
      "adam", lr_ranges.optim.base_learning_rate(cfg))


@pytest.mark.slow
def test_a_train_run_logs_the_warning(cifar10_dir, tmp_path, caplog):
  from estimator_cifar.engine import modes
  cfg = tiny_config("optimizer.name=adam", "optimizer.learning_rate=0.1",
                    "train.steps=1")
  modes.run(cfg, str(tmp_path), "train", cifar10_dir)
  assert "above its usual range" in caplog.text
