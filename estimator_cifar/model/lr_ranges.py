"""Working learning-rate ranges of the optimizers, and the warning outside them.

One `optimizer.learning_rate` does not suit every optimizer: momentum SGD
trains a CIFAR ResNet at 0.1; Adam learns worse there and wants ~1e-3; FTRL at
0.5 learns far less than at 0.05. WORKING_RANGES gives, per optimizer, the base rates
(after `scale_lr_with_batch`) within which the ResNet recipe trains; the
docs/real_data.md table lists them with the measured runs. A run whose rate
is outside its optimizer's range logs a warning naming the range; it still
runs (a user may mean it).
"""

from absl import logging

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.model import optim

# optimizer.name -> (low, high, suggested). Every name of
# config.OPTIMIZER_NAMES has a row (tests/test_lr_ranges.py checks it).
WORKING_RANGES = {
    "sgd": (0.01, 1.0, 0.1),
    "momentum": (0.005, 0.5, 0.1),
    "nesterov": (0.005, 0.5, 0.1),
    "adam": (1e-5, 0.01, 1e-3),
    "adamw": (1e-5, 0.01, 1e-3),
    "rmsprop": (1e-5, 0.01, 1e-3),
    "adagrad": (0.001, 0.2, 0.05),
    "adadelta": (0.1, 10.0, 1.0),
    "ftrl": (0.001, 0.2, 0.05),
}


def out_of_range_message(optimizer: str, rate: float) -> str | None:
  """The warning for `rate` with `optimizer`, or None inside the range."""
  if optimizer not in WORKING_RANGES:
    return None
  low, high, suggested = WORKING_RANGES[optimizer]
  if low <= rate <= high:
    return None
  # "may": on real photographs Adam at 0.1 still trained, just worse
  # (docs/real_data.md), while FTRL at 0.5 stays near chance on digits.
  side, risk = (("above", "it may diverge, stall near chance or learn worse")
                if rate > high else ("below", "it may barely learn"))
  return (f"optimizer.learning_rate gives a base rate of {rate:g} for "
          f"optimizer.name={optimizer}, {side} its usual range {low:g} to "
          f"{high:g}: {risk}. Try --params_override="
          f"optimizer.learning_rate={suggested:g} (docs/real_data.md lists "
          "each optimizer's range).")


def warn_if_outside(cfg: ExperimentConfig) -> str | None:
  """Logs the warning for cfg's optimizer and rate if any; returns it."""
  message = out_of_range_message(cfg.optimizer.name,
                                 optim.base_learning_rate(cfg))
  if message:
    logging.warning(message)
  return message
