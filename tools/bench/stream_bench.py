r"""Streaming against in-memory training input: peak RSS and images/sec by split size.

  python -m tools.bench.stream_bench --sizes=1,10,30 --in_memory_sizes=1,10 \
      --batches=400 --repeats=3 --workdir=/tmp

Writes CIFAR-10 binary-layout data sets of 1x, 10x, 30x CIFAR-10's training
size (50,000 records x N, random bytes, 5 train files as in the real layout)
under --workdir with a fast numpy writer, and deletes them at the end. For
each size and path (`data.in_memory=false`: streamed; `true`: in memory, only
at --in_memory_sizes, as it needs about three times the split in memory) a
child process builds the package's train input_fn (`make_input_fn`, the
`resnet_sgd` distortions at batch 128) and times --batches batches after
--warmup ones, per second of wall clock and per CPU-second of the process;
its peak RSS is read from getrusage. The paths alternate within each repeat;
figures are medians over the repeats, ratios medians of the per-repeat
ratios. Prints ONE JSON line.
"""

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.bench.stream_bench", file=sys.stderr)
  sys.exit(2)

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["1", "10", "30"], "Multiples of CIFAR-10's train split.")
flags.DEFINE_list("in_memory_sizes", ["1", "10"], "Sizes also run in memory.")
flags.DEFINE_integer("batches", 400, "Timed batches.")
flags.DEFINE_integer("warmup", 50, "Untimed first batches.")
flags.DEFINE_integer("repeats", 3, "Measurements per size and path.")
flags.DEFINE_string("workdir", tempfile.gettempdir(), "Where data sets go.")
flags.DEFINE_string("child", "", "Internal: measure this data_dir and exit.")
flags.DEFINE_string("in_memory", "false", "Internal: the child's data.in_memory.")

CIFAR10_TRAIN = 50000
RECORD = 3073  # Label byte + 32 x 32 x 3 image.
TRAIN_FILES = 5
TEST_RECORDS = 1000


def write_dataset(data_dir: str, multiple: int, seed: int = 0) -> int:
  """Writes `multiple` x CIFAR-10's train split; returns the bytes written.

  One block of random records (labels 0-9) is generated and written again
  and again: the bytes' values do not matter to the speed or memory of the
  reader.
  """
  folder = os.path.join(data_dir, "cifar-10-batches-bin")
  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng(seed)
  per_file = CIFAR10_TRAIN // TRAIN_FILES
  block = rng.integers(0, 256, (per_file, RECORD), dtype=np.uint8)
  block[:, 0] = rng.integers(0, 10, per_file)
  for i in range(1, TRAIN_FILES + 1):
    with open(os.path.join(folder, f"data_batch_{i}.bin"), "wb") as f:
      for _ in range(multiple):
        block.tofile(f)
  block[:TEST_RECORDS].tofile(os.path.join(folder, "test_batch.bin"))
  return multiple * CIFAR10_TRAIN * RECORD


def child(data_dir: str, in_memory: str, batches: int, warmup: int) -> dict:
  """In a fresh process: the train input_fn's images/sec and peak RSS."""
  import tensorflow as tf
  from estimator_cifar import config as config_lib
  from estimator_cifar.data import sources
  from estimator_cifar.data.input_pipeline import make_input_fn
  v1 = tf.compat.v1
  cfg = config_lib.resolve("resnet_sgd", [
      f"data.in_memory={in_memory},data.check_labels=false"])
  rss_before = _peak_rss_mb()
  start = time.perf_counter()
  with tf.Graph().as_default():
    dataset = make_input_fn(cfg, sources.get_source(cfg, data_dir), True)()
    op = tf.group(tf.nest.flatten(v1.data.make_one_shot_iterator(dataset).get_next()))
    with v1.Session() as session:
      for _ in range(warmup):
        session.run(op)
      first = time.perf_counter() - start
      begin, cpu = time.perf_counter(), time.process_time()
      for _ in range(batches):
        session.run(op)
      seconds = time.perf_counter() - begin
      cpu_seconds = time.process_time() - cpu
  images = batches * cfg.train.batch_size
  return {"images_per_sec": images / seconds,
          "images_per_cpu_sec": images / cpu_seconds,
          "peak_rss_mb": _peak_rss_mb(), "rss_before_pipeline_mb": rss_before,
          "seconds_to_first_batches": first}


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(data_dir: str, in_memory: str) -> dict:
  """Runs `child` in a new process (its own peak RSS) and returns its line."""
  out = subprocess.run(
      [sys.executable, "-m", f"{__package__}.stream_bench", f"--child={data_dir}",
       f"--in_memory={in_memory}", f"--batches={FLAGS.batches}",
       f"--warmup={FLAGS.warmup}"],
      capture_output=True, text=True, check=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  return json.loads(out.stdout.strip().splitlines()[-1])


def run() -> dict:
  sizes = [int(s) for s in FLAGS.sizes]
  in_memory_sizes = {int(s) for s in FLAGS.in_memory_sizes}
  result = {"batch_size": 128, "batches": FLAGS.batches, "warmup": FLAGS.warmup,
            "repeats": FLAGS.repeats, "sizes": {}}
  root = tempfile.mkdtemp(prefix="stream_bench_", dir=FLAGS.workdir)
  try:
    for size in sizes:
      data_dir = os.path.join(root, f"x{size}")
      split_bytes = write_dataset(data_dir, size)
      paths = ["false"] + (["true"] if size in in_memory_sizes else [])
      runs = {p: [] for p in paths}
      for _ in range(FLAGS.repeats):
        for path in paths:
          runs[path].append(measure(data_dir, path))
      shutil.rmtree(data_dir)
      entry = {"records": size * CIFAR10_TRAIN, "split_mb": split_bytes / 2**20}
      for path, rows in runs.items():
        name = "streaming" if path == "false" else "in_memory"
        entry[name] = {key: statistics.median(r[key] for r in rows)
                       for key in rows[0]}
        entry[name]["runs"] = rows
      if "in_memory" in entry:
        for key in ("images_per_sec", "images_per_cpu_sec"):
          entry[f"streaming_vs_in_memory_{key}"] = statistics.median(
              s[key] / m[key] for s, m in zip(runs["false"], runs["true"]))
      result["sizes"][str(size)] = entry
  finally:
    shutil.rmtree(root, ignore_errors=True)
  streamed = [result["sizes"][str(s)]["streaming"]["peak_rss_mb"] for s in sizes]
  result["streaming_rss_growth_mb"] = streamed[-1] - streamed[0]
  return result


def main(argv):
  del argv
  if FLAGS.child:
    print(json.dumps(child(FLAGS.child, FLAGS.in_memory, FLAGS.batches,
                           FLAGS.warmup)), flush=True)
    return
  print(json.dumps(run()), flush=True)


if __name__ == "__main__":
  app.run(main)
