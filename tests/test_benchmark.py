"""tools/benchmark.py: a few steps of a tiny model on synthetic data, and its parts."""

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from tests.testutil import seconds, subprocess_env
from tools import benchmark
from tools.bench import measure as bench_measure
from tools.bench import peers as bench_peers

# tiny: conv3x3/2 3->8 (16x16 out), conv3x3/2 8->16 (8x8 out), dense 16->10.
TINY_FORWARD_FLOPS = (2 * 16 * 16 * 8 * 3 * 3 * 3 + 2 * 8 * 8 * 16 * 3 * 3 * 8
                      + 2 * 16 * 10)
TINY_ARGS = [
    "--params_override=model.name=tiny,train.batch_size=16,eval.batch_size=16,"
    "data.synthetic_train_size=128,data.synthetic_eval_size=64,"
    "data.shuffle_buffer=128,train.precision=float32",
    "--steps=6", "--warmup=2", "--windows=3", "--eval_warmup=1",
    "--pipeline_steps=8", "--pipeline_threads=1", "--peak_trials=1",
    "--peak_reps=2", "--vs_keras", "--keras_peer=/nonexistent/peer_keras.py"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
  model_dir = str(tmp_path_factory.mktemp("bench"))
  return benchmark.main(TINY_ARGS + [f"--model_dir={model_dir}"]), model_dir


@pytest.mark.slow
def test_prints_one_json_line_with_positive_sane_figures(result, capsys):
  del capsys  # The line was printed when the fixture ran; main returns it.
  res, model_dir = result
  assert json.loads(json.dumps(res)) == res  # JSON-serializable as printed.
  for key in ("train_images_per_sec", "train_images_per_cpu_sec",
              "input_pipeline_images_per_sec", "eval_images_per_sec",
              "conv_peak_gflops", "achieved_gflops"):
    assert res[key] > 0, key
  assert len(res["train_images_per_sec_windows"][0]) == 3
  assert res["input_pipeline_by_threads"]["1"] > 0
  # Both count from this process's creation, which in a test worker may be
  # long before the fixture ran: bounded by the process's age and CPU time.
  process = psutil.Process()
  assert 0 < res["seconds_to_first_step"] < time.time() - process.create_time()
  assert 0 < res["cpu_seconds_to_first_step"] < sum(process.cpu_times()[:2])
  assert 100 < res["peak_rss_mb"] < 8192
  assert res["forced_overrides"] == ("train.steps=8,checkpoint.save_secs=86400,"
                                     "checkpoint.save_steps=0")
  # The run trained warm-up + timed steps in the model_dir it was given.
  assert os.path.exists(os.path.join(model_dir, "model.ckpt-8.index"))


@pytest.mark.slow
def test_flops_come_from_the_graph_and_the_fraction_from_them(result):
  res, _ = result
  assert res["conv_matmul_flops_per_image"] == TINY_FORWARD_FLOPS
  assert res["train_flops_per_image"] == 3 * TINY_FORWARD_FLOPS
  # The profiler also counts element-wise ops: a little more.
  assert TINY_FORWARD_FLOPS <= res["model_flops_per_image"] < 1.2 * TINY_FORWARD_FLOPS
  achieved = res["train_images_per_sec"] * res["train_flops_per_image"] / 1e9
  assert res["achieved_gflops"] == pytest.approx(achieved, abs=0.06)
  assert res["achieved_fraction_of_peak"] == pytest.approx(
      achieved / res["conv_peak_gflops"], rel=0.05)
  assert set(res["peak_gflops"]) == {"conv3x3_32x32x16", "conv3x3_8x8x64",
                                     "matmul_2048"}


@pytest.mark.slow
def test_missing_keras_peer_is_a_note_not_a_failure(result):
  res, _ = result
  assert res["keras_images_per_sec"] is None and res["ratio_vs_keras"] is None
  assert any("peer_keras.py not found" in n and "/nonexistent" in n
             for n in res["notes"])
  assert res["targets"]["ratio_vs_keras"]["met"] is None
  # A float32 run has no same-precision peer: its fields are there, null.
  for key in ("keras_same_precision_images_per_sec",
              "keras_same_precision_images_per_cpu_sec",
              "ratio_vs_keras_same_precision",
              "ratio_vs_keras_same_precision_cpu",
              "keras_precision", "keras_same_precision_precision"):
    assert res[key] is None, key
  assert res["keras_same_precision_runs"] == []
  assert set(res["targets"]) == set(benchmark.TARGETS)
  first = res["targets"]["seconds_to_first_step"]
  assert first["met"] == (res["seconds_to_first_step"] <= 15)


def test_window_rates_drop_the_warmup_and_split_evenly():
  # Steps end at t = 0, 10 (warm-up), then 11, 12, 13, 15, 17, 19.
  marks = [0, 10, 11, 12, 13, 15, 17, 19]
  assert bench_measure.window_rates(marks, batch=4, warmup=1, windows=2) == [
      3 * 4 / 3, 3 * 4 / 6]
  assert bench_measure.mean_rate(marks, batch=4, warmup=1) == 6 * 4 / 9
  assert bench_measure.window_rates([0, 1], batch=4, warmup=1, windows=3) == []


def test_peer_runs_under_the_cpu_clock_wrapper(tmp_path):
  peer = tmp_path / "peer.py"
  peer.write_text(
      "import time\n"
      "t = time.perf_counter()\n"
      "x = sum(i * i for i in range(300000))\n"
      "dt = time.perf_counter() - t\n"
      "print(f'fake steps=3 images/sec {384 / dt:.1f}')\n")
  rate, note = bench_peers.run_peer(str(peer), [], bench_peers.KERAS_LINE,
                                    seconds(60))
  assert note is None
  assert rate.wall > 0 and rate.cpu > 0
  # A single-threaded busy loop: CPU time is at most the wall time.
  assert rate.cpu >= rate.wall * 0.999
  broken = tmp_path / "broken.py"
  broken.write_text("raise SystemExit('no rate here')\n")
  rate, note = bench_peers.run_peer(str(broken), [], bench_peers.KERAS_LINE,
                                    seconds(60))
  assert rate is None and "without a rate" in note and "no rate here" in note


def test_a_config_typo_fails_before_tensorflow_work():
  with pytest.raises(benchmark.UserError, match="train.stepz"):
    benchmark.main(["--params_override=train.stepz=3"])


def _config(*flags):
  """Parsed args and resolved config as main() gets them (no TensorFlow)."""
  args = benchmark.parse_args(list(flags))
  cfg, _ = benchmark.build_config(args.experiment, args.params_override,
                                  args.data_dir, args.warmup + args.steps)
  return args, cfg


def test_mixed_precision_runs_the_keras_peer_also_at_that_precision(tmp_path):
  peer = tmp_path / "peer_keras.py"
  peer.write_text("")
  args, cfg = _config("--vs_keras", f"--keras_peer={peer}",
                      "--params_override=train.precision=mixed_bfloat16",
                      "--steps=7", "--warmup=3")
  notes = []
  peers = benchmark.build_peers(args, cfg, str(tmp_path), notes)
  assert list(peers) == ["keras", "keras_same_precision"]
  plain, same = peers["keras"], peers["keras_same_precision"]
  assert plain.script == same.script == str(peer)
  assert plain.args(0) == same.args(1) == [
      "--steps", "7", "--warmup", "3", "--batch", "128", "--model", "resnet20"]
  assert (plain.precision, plain.env) == ("float32", {})
  assert same.precision == "mixed_bfloat16"
  assert same.env == {bench_peers.KERAS_POLICY_ENV: "mixed_bfloat16"}
  assert any("keras_same_precision_*" in n and "mixed_bfloat16" in n
             for n in notes)
  # In float32 the peer runs once, and there is nothing to note.
  args, cfg = _config("--vs_keras", f"--keras_peer={peer}",
                      "--params_override=train.precision=float32")
  notes = []
  assert list(benchmark.build_peers(args, cfg, str(tmp_path), notes)) == [
      "keras"]
  assert notes == []


def test_report_has_both_keras_peers_with_their_precisions():
  args, cfg = _config("--params_override=train.precision=mixed_bfloat16")
  rate = bench_measure.Rate
  m = benchmark.Measurements(
      train_runs=[(rate(100.0, 50.0), 100.0, [100.0])], first_step=(1.0, 1.0),
      peer_runs={"keras": [rate(50.0, 25.0)],
                 "keras_same_precision": [rate(200.0, 100.0), None]},
      peer_precisions={"keras": "float32",
                       "keras_same_precision": "mixed_bfloat16"},
      info={"cpu_count": 2, "cpu_model": "", "tf_version": "", "gpus": []})
  res = benchmark.bench_report.build(args, cfg, [], m)
  assert (res["ratio_vs_keras"], res["ratio_vs_keras_cpu"]) == (2.0, 2.0)
  assert res["keras_same_precision_images_per_sec"] == 200.0
  assert res["keras_same_precision_images_per_cpu_sec"] == 100.0
  assert res["ratio_vs_keras_same_precision"] == 0.5
  assert res["ratio_vs_keras_same_precision_cpu"] == 0.5
  assert res["keras_same_precision_runs"] == [200.0, None]
  assert res["keras_precision"] == "float32"
  assert res["keras_same_precision_precision"] == "mixed_bfloat16"
  assert res["minimal_images_per_sec"] is None and res["minimal_runs"] == []
  assert res["peak_dtype"] == "bfloat16"


@pytest.mark.slow
def test_wrapper_sets_the_keras_policy_only_when_asked(tmp_path, monkeypatch):
  peer = tmp_path / "peer.py"
  peer.write_text(
      "import sys\n"
      "if 'tensorflow' in sys.modules:\n"
      "  import tensorflow as tf\n"
      "  print('policy=' + tf.keras.mixed_precision.global_policy().name)\n"
      "print('images/sec', 2.0 if 'tensorflow' in sys.modules else 1.0)\n")
  # Without the variable the wrapper leaves TensorFlow alone; one inherited
  # from the shell is dropped, so the float32 peer never runs under a policy.
  monkeypatch.setenv(bench_peers.KERAS_POLICY_ENV, "mixed_bfloat16")
  rate, note = bench_peers.run_peer(str(peer), [], bench_peers.KERAS_LINE,
                                    seconds(60))
  assert note is None and rate.wall == 1.0
  env = subprocess_env(**{bench_peers.KERAS_POLICY_ENV: "mixed_bfloat16"})
  out = subprocess.run(
      [sys.executable, "-c", bench_peers.PEER_WRAPPER, str(peer)], env=env,
      capture_output=True, text=True, timeout=seconds(120), check=True).stdout
  assert "policy=mixed_bfloat16" in out.splitlines()
  assert bench_peers.parse_peer(out, bench_peers.KERAS_LINE).wall == 2.0


@pytest.mark.slow
def test_precisions_train_side_by_side_with_medians_and_ratios(tmp_path):
  res = benchmark.main(
      ["--params_override=model.name=tiny,train.batch_size=16,"
       "data.synthetic_train_size=64,data.synthetic_eval_size=16",
       "--steps=2", "--warmup=1", "--windows=1", "--repeats=2",
       "--skip=eval,pipeline,peak,flops", "--precisions=float32,mixed_bfloat16",
       f"--model_dir={tmp_path}"])
  assert res["precision"] == "float32"  # The first is the run's own.
  own, other = res["by_precision"]["float32"], res["by_precision"]["mixed_bfloat16"]
  assert len(own["runs"]) == len(other["runs"]) == 2
  assert own["images_per_sec"] == res["train_images_per_sec"]
  assert own["ratio"] == 1.0
  assert other["ratio"] == pytest.approx(
      other["images_per_sec"] / own["images_per_sec"], rel=0.01)
  # Each precision trained in its own model_dir, to the same step.
  assert os.path.isfile(tmp_path / "mixed_bfloat16" / "checkpoint")


def test_by_precision_takes_medians_and_ratios_over_the_first():
  rate = bench_measure.Rate
  got = benchmark.bench_report.by_precision({
      "float32": [rate(100.0, 50.0), rate(90.0, 40.0), rate(110.0, 60.0)],
      "mixed_bfloat16": [rate(150.0, 80.0), rate(140.0, 70.0),
                         rate(10.0, 5.0)]})
  assert got["float32"]["ratio"] == 1.0
  assert got["mixed_bfloat16"] == {
      "images_per_sec": 140.0, "images_per_cpu_sec": 70.0,
      "runs": [150.0, 140.0, 10.0], "ratio": 1.4, "ratio_cpu": 1.4}


def test_an_unknown_precision_is_refused_before_tensorflow_work(capsys):
  with pytest.raises(SystemExit) as exit_info:
    benchmark.main(["--precisions=float32,bfloat17"])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err.startswith(
      "error: flag --precisions=['float32', 'bfloat17']: --precisions: "
      "choose from float32,")
