"""Predictor speed on a trained run, beside `--mode=eval`'s, as one JSON line.

  python -m tools.bench.predictor_bench --model_dir=runs/real_subset \
      --data_dir=/path/to/cifar10_real_subset --repeats=5

Measured, each the median of --repeats rounds that alternate the contenders
so a neighbour's burst on a shared machine hits them alike:
- load_s: `Predictor(model_dir)` when the run already has an export of its
  newest checkpoint (the first Predictor exports; `first_load_s`).
- single_ms: one warm call on one uint8 image (median of --calls calls).
- batch_images_per_sec: one call on the whole eval split (Predictor splits it
  into chunks of predictor.CHUNK).
- eval_images_per_sec: `estimator.evaluate` on the same split and config
  (the same test-time views), its first batch untimed, metrics on, at
  eval.batch_size=--eval_batch.
- onnx_* and tflite_*: the same two calls on the export's model.onnx under
  onnxruntime and model.tflite under TensorFlow's interpreter, with
  --formats, timed after the rounds above (onnxruntime's threads spin after
  each call).
"""

import json
import os
import statistics
import sys
import time

import numpy as np
from absl import flags

from tools import bench_measure, cli

FLAGS = flags.FlagValues()
flags.DEFINE_string("model_dir", None, "A trained run.", flag_values=FLAGS)
flags.DEFINE_string("data_dir", None, "Its data (default: as recorded).",
                    flag_values=FLAGS)
flags.DEFINE_integer("repeats", 5, "Rounds; figures are medians.",
                     flag_values=FLAGS)
flags.DEFINE_integer("calls", 100, "Single-image calls per round.",
                     flag_values=FLAGS)
flags.DEFINE_integer("eval_batch", 100, "eval.batch_size for the eval rate.",
                     flag_values=FLAGS)
flags.DEFINE_bool("formats", False, "Also time model.onnx and model.tflite "
                  "(exported with export.formats=[onnx,tflite]).",
                  flag_values=FLAGS)
flags.mark_flag_as_required("model_dir", flag_values=FLAGS)


def timed_ms(call, times: int) -> float:
  """Median milliseconds of `times` calls of `call()`, after one untimed."""
  call()
  spent = []
  for _ in range(times):
    start = time.perf_counter()
    call()
    spent.append((time.perf_counter() - start) * 1000)
  return statistics.median(spent)


def eval_rate(cfg, model_dir: str, data_dir: str | None, batch: int) -> float:
  """`estimator.evaluate`'s images/sec on the eval split, first batch untimed."""
  import dataclasses
  from estimator_cifar.data.input_pipeline import make_input_fn
  from estimator_cifar.engine import estimator_setup
  from estimator_cifar.engine.export import serving_estimator
  cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval,
                                                          batch_size=batch))
  plan = estimator_setup.make_plan(cfg, data_dir)
  estimator = serving_estimator(cfg, model_dir, plan.source.num_classes)
  timer = bench_measure.step_timer()
  estimator.evaluate(make_input_fn(cfg, plan.source, training=False),
                     hooks=[timer])
  return bench_measure.mean_rate(timer.wall, batch, warmup=1)


def format_runners(export_path: str) -> dict:
  """{name: call(images) -> outputs} for the export's ONNX and TFLite files."""
  import onnxruntime as ort
  import tensorflow as tf
  session = ort.InferenceSession(os.path.join(export_path, "model.onnx"),
                                 providers=["CPUExecutionProvider"])
  tflite = tf.lite.Interpreter(
      model_path=os.path.join(export_path, "model.tflite"),
      num_threads=os.cpu_count()).get_signature_runner("serving_default")
  return {"onnx": lambda x: session.run(["probabilities"], {"images": x}),
          "tflite": lambda x: tflite(images=x)}


def main(argv=None) -> dict:
  cli.parse(FLAGS, sys.argv[1:] if argv is None else argv, __doc__)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  from estimator_cifar import Predictor, predictor as predictor_lib
  from estimator_cifar.data import sources
  from estimator_cifar.rundir import recorded
  overrides = ["export.formats=[onnx,tflite]"] if FLAGS.formats else []
  cfg, data_dir = recorded.setup("predict", FLAGS.model_dir, None, overrides,
                                 FLAGS.data_dir)
  start = time.perf_counter()
  first = Predictor(FLAGS.model_dir, overrides, data_dir)
  first_load = time.perf_counter() - start
  pairs = list(sources.get_source(cfg, data_dir).records("test"))
  images = np.stack([image.numpy() for image, _ in pairs])
  rounds = []
  for _ in range(FLAGS.repeats):
    start = time.perf_counter()
    predictor = Predictor(FLAGS.model_dir, overrides, data_dir)
    row = {"load_s": time.perf_counter() - start,
           "single_ms": timed_ms(lambda: predictor(images[:1]), FLAGS.calls),
           "batch_images_per_sec":
               len(images) / timed_ms(lambda: predictor(images), 1) * 1000,
           "eval_images_per_sec": eval_rate(cfg, FLAGS.model_dir, data_dir,
                                            FLAGS.eval_batch)}
    rounds.append(row)
  # Apart from the rounds above: onnxruntime's idle threads spin for a while
  # after each call and would slow the TensorFlow contenders.
  runners = format_runners(first.export_path) if FLAGS.formats else {}
  for row in rounds:
    for name, run in runners.items():
      row[f"{name}_single_ms"] = timed_ms(lambda: run(images[:1]), FLAGS.calls)
      chunks = lambda: [run(images[i:i + predictor_lib.CHUNK])
                        for i in range(0, len(images), predictor_lib.CHUNK)]
      row[f"{name}_batch_images_per_sec"] = len(images) / timed_ms(chunks, 1) * 1000
  result = {key: round(statistics.median(r[key] for r in rounds), 3)
            for key in rounds[0]}
  result.update(
      first_load_s=round(first_load, 3), eval_images=len(images),
      views=cfg.eval.tta, batch_vs_eval=round(
          result["batch_images_per_sec"] / result["eval_images_per_sec"], 3),
      repeats=FLAGS.repeats, load_average=bench_measure.load_average(),
      **bench_measure.machine_info())
  print(json.dumps(result, sort_keys=True), flush=True)
  return result


if __name__ == "__main__":
  main()
