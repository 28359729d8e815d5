"""Property tests: any override text or record file is either accepted or
refused with the package's own clear error, never another exception."""

import os
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from estimator_cifar import config as config_lib
from estimator_cifar.data import cifar, cifar_binary
from estimator_cifar.errors import ConfigError, DataError
from tests.testutil import tiny_config

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# Text made of override syntax and real key fragments, plus arbitrary Unicode,
# so that examples reach deep into the parser instead of failing at the split.
_KEYS = config_lib.all_keys(tiny_config())
_PIECES = st.one_of(
    st.sampled_from(_KEYS), st.sampled_from(list("=,.:[]{}'\" -_")),
    st.sampled_from(["true", "no", "1e9", "-3", "nan", "inf", "0x10", "1_000",
                     "__class__", "to_dict", "name", "model", "[1,2]", "{a:1}"]),
    st.text(alphabet=string.printable, max_size=6), st.text(max_size=4))
OVERRIDE_TEXT = st.lists(_PIECES, max_size=12).map("".join)


@pytest.mark.slow
@SETTINGS
@given(st.lists(OVERRIDE_TEXT, max_size=3))
@example(["__class__.name=x"])  # Once reached the class object: KeyError.
@example(["__class__.model=1"])  # AttributeError.
def test_overrides_parse_or_raise_config_error(overrides):
  cfg = tiny_config()
  try:
    pairs = config_lib.split_overrides(overrides)
  except ConfigError as e:
    assert str(e).startswith("Malformed --params_override")
    return
  assert all(key and "=" not in key for key, _ in pairs)
  try:
    config_lib.validate(config_lib.apply_overrides(cfg, overrides))
  except ConfigError as e:
    assert str(e) and "\n" not in str(e)


@SETTINGS
@given(key=st.sampled_from(_KEYS), raw=OVERRIDE_TEXT)
def test_every_field_parses_any_value_or_raises_config_error(key, raw):
  cfg = tiny_config()
  try:
    config_lib.apply_overrides(cfg, [f"{key}={raw}"])
  except ConfigError as e:  # raw may hold `,other.key=`: any key may be named.
    assert str(e) and "\n" not in str(e)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=st.sampled_from([cifar.DATASETS[name] for name in cifar.PUBLISHED]),
       sizes=st.lists(st.integers(0, 3 * 3074 + 5), min_size=1, max_size=3),
       seed=st.integers(0, 2**32 - 1), label_limit=st.sampled_from([10, 20, 100, 256]))
def test_record_reader_counts_or_raises_data_error(tmp_path, layout, sizes, seed,
                                                   label_limit):
  rng = np.random.default_rng(seed)
  paths = []
  for i, size in enumerate(sizes):
    data = rng.integers(0, 256, size, dtype=np.uint8)
    # Labels mostly in range, sometimes not, so both outcomes are exercised.
    data[::layout.record_bytes] = rng.integers(0, label_limit, data[::layout.record_bytes].size)
    path = os.path.join(tmp_path, f"f{i}.bin")
    data.tofile(path)
    paths.append(path)
  whole = all(s % layout.record_bytes == 0 for s in sizes) and sum(sizes) > 0
  try:
    count = sum(cifar_binary.count_records(paths, layout))
  except DataError as e:
    assert not whole and ("not a whole number" in str(e) or "No records" in str(e))
    return
  assert whole and count == sum(sizes) // layout.record_bytes
  for kind in layout.label_offset:
    try:
      cifar_binary.check_labels(paths, layout, kind)
    except DataError as e:
      assert f"outside the {layout.num_classes[kind]} {kind} classes" in str(e)
