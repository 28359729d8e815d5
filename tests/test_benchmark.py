"""tools/benchmark.py: a few steps of a tiny model on synthetic data, and its parts."""

import json
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS_DIR = os.path.join(REPO_ROOT, "tools")
if TOOLS_DIR not in sys.path:
  sys.path.insert(0, TOOLS_DIR)

import benchmark  # pylint: disable=g-import-not-at-top,wrong-import-position

# tiny: conv3x3/2 3->8 (16x16 out), conv3x3/2 8->16 (8x8 out), dense 16->10.
TINY_FORWARD_FLOPS = (2 * 16 * 16 * 8 * 3 * 3 * 3 + 2 * 8 * 8 * 16 * 3 * 3 * 8
                      + 2 * 16 * 10)
TINY_ARGS = [
    "--params_override=model.name=tiny,train.batch_size=16,eval.batch_size=16,"
    "data.synthetic_train_size=128,data.synthetic_eval_size=64,"
    "data.shuffle_buffer=128",
    "--steps=6", "--warmup=2", "--windows=3", "--eval_warmup=1",
    "--pipeline_steps=8", "--pipeline_threads=1", "--peak_trials=1",
    "--peak_reps=2", "--vs-keras", "--keras_peer=/nonexistent/peer_keras.py"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
  model_dir = str(tmp_path_factory.mktemp("bench"))
  return benchmark.main(TINY_ARGS + [f"--model_dir={model_dir}"]), model_dir


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
  assert 0 < res["seconds_to_first_step"] < 600
  assert 0 < res["cpu_seconds_to_first_step"] < 600
  assert 100 < res["peak_rss_mb"] < 8192
  assert res["forced_overrides"] == ("train.steps=8,checkpoint.save_secs=86400,"
                                     "checkpoint.save_steps=0")
  # The run trained warm-up + timed steps in the model_dir it was given.
  assert os.path.exists(os.path.join(model_dir, "model.ckpt-8.index"))


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


def test_missing_keras_peer_is_a_note_not_a_failure(result):
  res, _ = result
  assert res["keras_images_per_sec"] is None and res["ratio_vs_keras"] is None
  assert any("peer_keras.py not found" in n and "/nonexistent" in n
             for n in res["notes"])
  assert res["targets"]["ratio_vs_keras"]["met"] is None
  assert set(res["targets"]) == set(benchmark.TARGETS)
  first = res["targets"]["seconds_to_first_step"]
  assert first["met"] == (res["seconds_to_first_step"] <= 15)


def test_window_rates_drop_the_warmup_and_split_evenly():
  # Steps end at t = 0, 10 (warm-up), then 11, 12, 13, 15, 17, 19.
  marks = [0, 10, 11, 12, 13, 15, 17, 19]
  assert benchmark.window_rates(marks, batch=4, warmup=1, windows=2) == [
      3 * 4 / 3, 3 * 4 / 6]
  assert benchmark.mean_rate(marks, batch=4, warmup=1) == 6 * 4 / 9
  assert benchmark.window_rates([0, 1], batch=4, warmup=1, windows=3) == []


def test_peer_runs_under_the_cpu_clock_wrapper(tmp_path):
  peer = tmp_path / "peer.py"
  peer.write_text(
      "import time\n"
      "t = time.perf_counter()\n"
      "x = sum(i * i for i in range(300000))\n"
      "dt = time.perf_counter() - t\n"
      "print(f'fake steps=3 images/sec {384 / dt:.1f}')\n")
  rate, note = benchmark.run_peer(str(peer), [], benchmark.KERAS_LINE, 60)
  assert note is None
  assert rate.wall > 0 and rate.cpu > 0
  # A single-threaded busy loop: CPU time is at most the wall time.
  assert rate.cpu >= rate.wall * 0.999
  broken = tmp_path / "broken.py"
  broken.write_text("raise SystemExit('no rate here')\n")
  rate, note = benchmark.run_peer(str(broken), [], benchmark.KERAS_LINE, 60)
  assert rate is None and "without a rate" in note and "no rate here" in note


def test_a_config_typo_fails_before_tensorflow_work():
  with pytest.raises(benchmark.UserError, match="train.stepz"):
    benchmark.main(["--params_override=train.stepz=3"])
