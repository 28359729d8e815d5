"""Random overrides drawn from the config's own field table either validate and
train, or stop with one `error:` and exit 2; never a traceback.

Values come from config_checks.RANGES (inside, at and past each end, NaN,
inf) and from each choice field's choices. Hypothesis is derandomized, so the
examples are the same on every run.
"""

import math
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from estimator_cifar import config as config_lib
from estimator_cifar import config_checks
from estimator_cifar.errors import ConfigError
from tests import testutil

DEFAULTS = config_lib.ExperimentConfig()
SPECIAL = [math.nan, math.inf, -math.inf, 0, -1, 1e12]
# In-range values of these cost time or memory in proportion to the value
# (images made, steps run, layers built): trained examples leave them alone.
COSTLY = ("data.synthetic_", "train.batch_size", "eval.batch_size", "train.steps",
          "train.epochs", "model.depth", "model.width", "train.steps_per_loop",
          "data.shuffle_buffer")
# A tiny synthetic run of two steps, in this process.
TRAINED = testutil.TINY + testutil.CONSTANT_LR + [
    "data.name=synthetic", "data.synthetic_train_size=64",
    "data.synthetic_eval_size=16", "train.steps=2", "ema.decay=0"]


def _text(value) -> str:
  return str(value).lower() if isinstance(value, float) and \
      not math.isfinite(value) else str(value)


def _values(key: str, moderate: bool) -> st.SearchStrategy[str]:
  """Override texts for numeric field `key`: in range, at and past its ends."""
  allowed = config_checks.RANGES[key]
  default = config_lib.get(DEFAULTS, key)
  sample = next(iter(default.values()), 1.0) if isinstance(default, dict) else \
      default[0] if isinstance(default, list) and default else default
  is_int = isinstance(sample, int) and not isinstance(sample, bool)
  cap = 100 if moderate else 1e6
  low, high = max(allowed.low, -cap), min(allowed.high, cap)
  inside = st.integers(math.ceil(low), math.floor(high)) if is_int else \
      st.floats(low, high, allow_nan=False)
  edges = [e + d for e in (allowed.low, allowed.high) if math.isfinite(e)
           for d in (-1, 0, 1)]
  number = st.one_of(inside, st.sampled_from(edges + SPECIAL)).map(
      lambda v: int(v) if is_int and math.isfinite(v) else v).map(_text)
  if isinstance(default, list):
    return st.lists(number, max_size=3).map(lambda l: "[" + ",".join(l) + "]")
  if isinstance(default, dict):
    return number.map(lambda v: "{resnet/logits:" + v + "}")
  return number


def overrides(moderate: bool = False) -> st.SearchStrategy[str]:
  """One `key=value` drawn from the field table."""
  keys = [k for k in config_checks.RANGES
          if not (moderate and k.startswith(COSTLY))]
  numeric = st.sampled_from(keys).flatmap(
      lambda k: _values(k, moderate).map(lambda v: f"{k}={v}"))
  choice = st.sampled_from(sorted(config_checks.CHOICES.items())).flatmap(
      lambda kv: st.sampled_from(kv[1] + ("bogus",)).map(
          lambda v: f"{kv[0]}={v}"))
  return st.one_of(numeric, choice)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(overrides(), min_size=1, max_size=3))
def test_random_overrides_validate_or_raise_one_config_error(drawn):
  try:
    config_lib.resolve("resnet_sgd", [",".join(testutil.TINY + drawn)])
  except ConfigError as e:
    assert str(e) and "\n" not in str(e)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(overrides(moderate=True), min_size=1, max_size=2))
def test_random_overrides_train_or_exit_2_with_one_error(capsys, drawn):
  with tempfile.TemporaryDirectory() as root:
    code, _, err = testutil.cli_in_process(
        capsys, "--experiment=resnet_sgd", "--mode=train",
        f"--model_dir={root}/run",
        "--params_override=" + ",".join(TRAINED + drawn))
  assert "Traceback" not in err, err[-3000:]
  if code != 0:
    assert testutil.error_line(code, err), err[-3000:]
