"""train.precision=auto: the choice from the GPU list and the CPU flags."""

import pytest

from estimator_cifar import config as config_lib
from estimator_cifar.engine import estimator_setup, precision
from tests.testutil import tiny_config

SAPPHIRE_RAPIDS = {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
COOPER_LAKE = {"avx512f", "avx512_bf16"}


@pytest.mark.parametrize("gpus, flags, want", [
    ([(8, 0)], COOPER_LAKE, "mixed_float16"),      # A100.
    ([(7, 0), (6, 1)], set(), "mixed_float16"),    # The best GPU decides.
    ([(6, 1)], SAPPHIRE_RAPIDS, "float32"),        # Pascal: no tensor cores.
    ([], SAPPHIRE_RAPIDS, "mixed_bfloat16"),
    ([], COOPER_LAKE, "float32"),                  # bf16 without AMX: slower.
    ([], {"avx2", "fma"}, "float32"),
])
def test_choice_follows_the_device(gpus, flags, want):
  chosen, reason = precision.choose(gpus, flags)
  assert chosen == want
  assert reason


def test_reason_names_what_was_found():
  assert "7.5" in precision.choose([(7, 5)], set())[1]
  assert "no AMX" in precision.choose([], COOPER_LAKE)[1]


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16 amx_bf16\n"
                     "bugs\t\t: spectre\n")
  assert precision.cpu_flags(str(cpuinfo)) == {"fpu", "avx512_bf16", "amx_bf16"}
  assert precision.cpu_flags(str(tmp_path / "absent")) == set()


def _auto_on(monkeypatch, gpus, flags):
  monkeypatch.setattr(precision, "gpu_capabilities", lambda: gpus)
  monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
  monkeypatch.setattr(precision, "_logged", set())


def test_auto_resolves_to_a_copy_and_logs_the_reason(monkeypatch, caplog):
  _auto_on(monkeypatch, [], SAPPHIRE_RAPIDS)
  cfg = tiny_config("train.precision=auto")
  resolved = precision.resolve(cfg)
  assert resolved.train.precision == "mixed_bfloat16"
  assert cfg.train.precision == "auto"  # The user's config is untouched.
  assert "train.precision=auto -> mixed_bfloat16: CPU with AMX" in caplog.text


def test_explicit_precision_is_used_as_given(monkeypatch):
  _auto_on(monkeypatch, [(8, 0)], set())
  cfg = tiny_config("train.precision=mixed_bfloat16")
  assert precision.resolve(cfg) is cfg


def test_the_estimator_gets_the_resolved_precision(monkeypatch, cifar10_dir,
                                                   tmp_path):
  _auto_on(monkeypatch, [], COOPER_LAKE)
  cfg = tiny_config("train.precision=auto")
  plan = estimator_setup.make_plan(cfg, cifar10_dir)
  estimator = estimator_setup.make_estimator(cfg, str(tmp_path), plan)
  assert estimator.params.config.train.precision == "float32"


def test_auto_is_valid_and_not_the_default():
  assert tiny_config("train.precision=auto").train.precision == "auto"
  assert config_lib.ExperimentConfig().train.precision == "float32"
  # What auto picks is always a concrete precision the model implements.
  for gpus, flags in (([(8, 0)], set()), ([], SAPPHIRE_RAPIDS), ([], set())):
    assert precision.choose(gpus, flags)[0] in config_lib.PRECISIONS
