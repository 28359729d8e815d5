"""train.precision=auto: the device rule, the measured decision, its cache."""

import json

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import config as config_lib
from estimator_cifar.engine import (estimator_setup, export, modes, precision,
                                    precision_cache, precision_probe)
from estimator_cifar.data import download
from estimator_cifar.errors import DataError
from estimator_cifar.rundir import run_record
from tests.testutil import closed_port, tiny_config

SAPPHIRE_RAPIDS = {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
COOPER_LAKE = {"avx512f", "avx512_bf16"}
CPU_MODEL = "Test CPU 9000"


@pytest.mark.parametrize("gpus, flags, want", [
    ([(8, 0)], COOPER_LAKE, "mixed_float16"),      # A100.
    ([(7, 0), (6, 1)], set(), "mixed_float16"),    # The best GPU decides.
    ([(6, 1)], SAPPHIRE_RAPIDS, "float32"),        # Pascal: no tensor cores.
    ([], {"avx2", "fma"}, "float32"),              # No bfloat16 at all.
    ([], SAPPHIRE_RAPIDS, None),                   # bfloat16: measured.
    ([], COOPER_LAKE, None),
])
def test_the_device_settles_gpus_and_cpus_without_bfloat16(gpus, flags, want):
  ruled = precision.device_rule(gpus, flags)
  assert (ruled and ruled.precision) == want
  if ruled:
    assert ruled.precision in config_lib.PRECISIONS and ruled.reason


def test_reason_names_the_gpu_found():
  assert "7.5" in precision.device_rule([(7, 5)], set()).reason


def _decide(rates, failures=None):
  return precision.decide(rates, failures or {}, 3, 5, "resnet-20", 128)


def test_a_clear_win_keeps_bfloat16_with_its_ratio():
  chosen = _decide({"float32": 10.0, "mixed_bfloat16": 14.1})
  assert (chosen.precision, chosen.ratio) == ("mixed_bfloat16", 1.41)
  assert chosen.reason == ("measured 1.41x float32's steps/s (median of 3 "
                           "alternating trials of 5 steps, resnet-20, batch 128)")


@pytest.mark.parametrize("bfloat16_rate", [11.4, 6.6])
def test_a_margin_under_the_bar_keeps_float32(bfloat16_rate):
  chosen = _decide({"float32": 10.0, "mixed_bfloat16": bfloat16_rate})
  assert chosen.precision == "float32"
  assert chosen.ratio == pytest.approx(bfloat16_rate / 10)
  assert f"{precision.CLEAR_MARGIN}x margin" in chosen.reason


def test_the_margin_itself_counts_as_clear():
  rates = {"float32": 10.0, "mixed_bfloat16": 10.0 * precision.CLEAR_MARGIN}
  assert _decide(rates).precision == "mixed_bfloat16"


def test_a_failing_precision_falls_back_to_float32_and_says_why():
  chosen = _decide({"float32": 10.0},
                   {"mixed_bfloat16": "No registered 'Foo' OpKernel"})
  assert (chosen.precision, chosen.ratio) == ("float32", None)
  assert "mixed_bfloat16 failed in the probe" in chosen.reason
  assert "No registered 'Foo' OpKernel" in chosen.reason


def test_cpu_model_and_flags_are_read_from_cpuinfo(tmp_path):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\n"
                     "flags\t\t: fpu avx512_bf16 amx_bf16\nbugs\t\t: spectre\n"
                     "processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu\n")
  assert precision.cpu_info(str(cpuinfo)) == (
      "AMD EPYC", {"fpu", "avx512_bf16", "amx_bf16"})
  assert precision.cpu_info(str(tmp_path / "absent")) == ("", set())


class FakeProbe:
  """precision_probe.probe with set rates; counts its calls."""

  def __init__(self, rates, failures=None):
    self.rates, self.failures, self.calls = rates, failures or {}, 0

  def __call__(self, cfg, precisions):
    self.calls += 1
    assert precisions == list(precision.CANDIDATES)
    return precision_probe.ProbeResult(dict(self.rates), dict(self.failures), 3)


@pytest.fixture
def machine(monkeypatch, tmp_path):
  """A CPU with avx512_bf16, a cache under tmp_path, a probe measuring 1.5x."""
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  monkeypatch.setattr(precision, "_decided", {})
  monkeypatch.setattr(precision, "gpu_capabilities", lambda: [])
  monkeypatch.setattr(precision, "cpu_info", lambda: (CPU_MODEL, COOPER_LAKE))
  probe = FakeProbe({"float32": 10.0, "mixed_bfloat16": 15.0})
  monkeypatch.setattr(precision_probe, "probe", probe)
  return probe


def _new_process(monkeypatch):
  monkeypatch.setattr(precision, "_decided", {})


def test_the_first_run_measures_and_later_runs_read_the_cache(
    machine, monkeypatch, caplog):
  cfg = tiny_config("train.precision=auto")
  resolved = precision.resolve(cfg)
  assert resolved.train.precision == "mixed_bfloat16"
  assert cfg.train.precision == "auto"  # The user's config is untouched.
  assert machine.calls == 1
  assert (f"train.precision=auto -> mixed_bfloat16: measured 1.50x float32's "
          f"steps/s (median of 3 alternating trials of 5 steps, tiny-20, "
          f"batch 16); cached in {precision_cache.path()}") in caplog.text
  precision.resolve(cfg)  # The same process: no probe, no second line.
  assert caplog.text.count("train.precision=auto ->") == 1
  _new_process(monkeypatch)
  assert precision.resolve(cfg).train.precision == "mixed_bfloat16"
  assert machine.calls == 1
  assert f"(cached in {precision_cache.path()})" in caplog.text


def test_the_cache_keys_on_cpu_tensorflow_network_and_batch(machine):
  precision.decision(tiny_config("train.precision=auto"))
  with open(precision_cache.path()) as f:
    entry, = json.load(f)["entries"]
  assert entry["key"] == precision_cache.key(
      CPU_MODEL, COOPER_LAKE, tf.__version__, "tiny-20", 16)
  assert entry["decision"]["ratio"] == 1.5
  # A digest of the flags, not the flags themselves; it changes with them.
  assert entry["key"]["cpu_flags_sha256"] != precision_cache.key(
      CPU_MODEL, SAPPHIRE_RAPIDS, "", "", 0)["cpu_flags_sha256"]


def test_the_network_name_keys_the_input_side_the_probe_timed():
  assert precision.network_name(tiny_config()) == "tiny-20"
  assert precision.network_name(tiny_config("data.image_size=24")) == \
      "tiny-20 at 24x24"


@pytest.mark.parametrize("change", ["tensorflow", "cpu", "batch"])
def test_another_machine_or_setting_measures_again(machine, monkeypatch,
                                                   change):
  precision.decision(tiny_config("train.precision=auto"))
  _new_process(monkeypatch)
  batch = 16
  if change == "tensorflow":
    monkeypatch.setattr(tf, "__version__", "2.14.0")
  elif change == "cpu":
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Other CPU", COOPER_LAKE))
  else:
    batch = 32
  precision.decision(tiny_config("train.precision=auto",
                                 f"train.batch_size={batch}"))
  assert machine.calls == 2
  with open(precision_cache.path()) as f:
    assert len(json.load(f)["entries"]) == 2  # Both machines' entries kept.


@pytest.mark.parametrize("garbage", ["{not json", '["a list"]',
                                     '{"format_version": 99, "entries": []}'])
def test_an_unreadable_cache_is_ignored_with_one_line_and_replaced(
    machine, caplog, garbage):
  cache = precision_cache.path()
  precision.decision(tiny_config("train.precision=auto"))
  with open(cache, "w") as f:
    f.write(garbage)
  precision._decided.clear()
  chosen = precision.decision(tiny_config("train.precision=auto"))
  assert (chosen.precision, machine.calls) == ("mixed_bfloat16", 2)
  assert caplog.text.count(f"Ignoring the precision cache {cache}") == 1
  assert precision_cache.lookup(precision_cache.key(
      CPU_MODEL, COOPER_LAKE, tf.__version__, "tiny-20", 16))["ratio"] == 1.5


@pytest.mark.parametrize("stored", [{"precision": "float64", "reason": ""},
                                    {"unknown": 1}])
def test_a_malformed_entry_is_ignored_and_replaced(machine, caplog, stored):
  key = precision_cache.key(CPU_MODEL, COOPER_LAKE, tf.__version__,
                            "tiny-20", 16)
  precision_cache.store(key, stored)
  chosen = precision.decision(tiny_config("train.precision=auto"))
  assert (chosen.precision, machine.calls) == ("mixed_bfloat16", 1)
  assert "Ignoring a malformed entry in the precision cache" in caplog.text
  assert precision_cache.lookup(key)["precision"] == "mixed_bfloat16"


def test_an_unwritable_cache_still_decides(machine, tmp_path, monkeypatch,
                                           caplog):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
  assert precision.decision(
      tiny_config("train.precision=auto")).precision == "mixed_bfloat16"
  assert "Could not write the precision cache" in caplog.text
  assert blocker.read_text() == ""


def test_a_failing_probe_precision_logs_why(machine, monkeypatch, caplog):
  monkeypatch.setattr(precision_probe, "probe", FakeProbe(
      {"float32": 10.0}, {"mixed_bfloat16": "No bfloat16 kernel for Foo"}))
  assert precision.resolve(
      tiny_config("train.precision=auto")).train.precision == "float32"
  assert ("-> float32: mixed_bfloat16 failed in the probe, so float32 "
          "(No bfloat16 kernel for Foo)") in caplog.text


@pytest.mark.parametrize("value", ["float32", "mixed_bfloat16"])
def test_an_explicit_precision_skips_the_probe(machine, value):
  cfg = tiny_config(f"train.precision={value}")
  assert precision.resolve(cfg) is cfg
  assert precision.run_fact(cfg) is None
  assert machine.calls == 0


def test_a_gpu_takes_the_rule_without_a_probe(machine, monkeypatch):
  monkeypatch.setattr(precision, "gpu_capabilities", lambda: [(8, 0)])
  cfg = tiny_config("train.precision=auto")
  assert precision.resolve(cfg).train.precision == "mixed_float16"
  assert machine.calls == 0


def test_the_estimator_gets_the_resolved_precision(machine, cifar10_dir,
                                                   tmp_path):
  cfg = tiny_config("train.precision=auto")
  plan = estimator_setup.make_plan(cfg, cifar10_dir)
  estimator = estimator_setup.make_estimator(cfg, str(tmp_path), plan)
  assert estimator.params.config.train.precision == "mixed_bfloat16"


def test_run_info_records_the_decision(machine, cifar10_dir, tmp_path):
  model_dir = str(tmp_path / "run")
  modes.run(tiny_config("train.precision=auto", "train.steps=1"), model_dir,
            "train", cifar10_dir)
  assert run_record.read(model_dir)["precision"] == {
      "precision": "mixed_bfloat16", "ratio": 1.5,
      "reason": "measured 1.50x float32's steps/s (median of 3 alternating "
                "trials of 5 steps, tiny-20, batch 16)"}
  assert machine.calls == 1  # The record and the Estimator share one probe.


def test_modes_that_do_not_train_never_probe(machine, cifar10_dir, tmp_path,
                                             monkeypatch):
  """eval, export and predict compute in float32 (model_fn.py): on another
  machine, or with an empty cache, they start at once."""
  cfg = tiny_config("train.precision=auto", "train.steps=2")
  model_dir = str(tmp_path / "run")
  modes.run(cfg, model_dir, "train", cifar10_dir)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "another_cache"))
  _new_process(monkeypatch)
  modes.run(cfg, model_dir, "eval", cifar10_dir)
  export.run_export(cfg, model_dir, None)
  assert machine.calls == 1  # The training run's probe alone.


def test_a_run_without_its_data_fails_before_any_probe(machine, tmp_path,
                                                       monkeypatch):
  monkeypatch.setenv(download.MIRROR_ENV, f"http://127.0.0.1:{closed_port()}")
  with pytest.raises(DataError, match="no_such_data"):
    modes.run(tiny_config("train.precision=auto"), str(tmp_path / "run"),
              "train", str(tmp_path / "no_such_data"))
  assert machine.calls == 0
  assert run_record.read(str(tmp_path / "run"))["precision"] is None


def test_a_real_probe_times_the_tiny_model_in_both_precisions():
  result = precision_probe.probe(tiny_config(), list(precision.CANDIDATES),
                                 trials=2, steps=2)
  assert set(result.steps_per_sec) == set(precision.CANDIDATES)
  assert all(rate > 0 for rate in result.steps_per_sec.values())
  assert (result.trials, result.steps, result.failures) == (2, 2, {})


def test_a_real_probe_reports_a_precision_that_fails(monkeypatch):
  real_runner = precision_probe._StepRunner

  def runner(cfg, name):
    if name == "mixed_bfloat16":  # As an op without a bfloat16 kernel does.
      raise tf.errors.NotFoundError(None, None, "No bfloat16 kernel for Foo")
    return real_runner(cfg, name)

  monkeypatch.setattr(precision_probe, "_StepRunner", runner)
  result = precision_probe.probe(tiny_config(), list(precision.CANDIDATES),
                                 trials=1, steps=1)
  assert list(result.steps_per_sec) == ["float32"]
  assert result.failures == {"mixed_bfloat16": "No bfloat16 kernel for Foo"}


def test_the_built_in_experiments_train_at_auto_and_the_config_default_is_float32():
  assert tiny_config("train.precision=auto").train.precision == "auto"
  assert config_lib.ExperimentConfig().train.precision == "float32"
  for name in config_lib.list_experiments():
    assert config_lib.load_experiment(name).train.precision == "auto", name


@pytest.mark.slow
def test_bfloat16_training_evaluates_and_exports_float32_outputs(cifar10_dir,
                                                                  tmp_path):
  """Evaluation metrics and every exported output stay float32 whatever the
  training precision: serving callers and tools never see bfloat16."""
  cfg = tiny_config("train.precision=mixed_bfloat16", "train.steps=4")
  model_dir = str(tmp_path / "run")
  modes.run(cfg, model_dir, "train", cifar10_dir)
  metrics = modes.run(cfg, model_dir, "eval", cifar10_dir)
  assert 0 <= float(metrics["accuracy"]) <= 1
  assert all(np.asarray(v).dtype != tf.bfloat16.as_numpy_dtype
             for v in metrics.values())
  serve = tf.saved_model.load(export.run_export(cfg, model_dir, None)
                              ).signatures["serving_default"]
  assert serve.structured_outputs["logits"].dtype == tf.float32
  assert serve.structured_outputs["probabilities"].dtype == tf.float32
  out = serve(images=tf.zeros([2, 32, 32, 3], tf.uint8))
  np.testing.assert_allclose(out["probabilities"].numpy().sum(1), 1, rtol=1e-5)
