r"""GPU speed in one command: training, eval and pipeline images/sec, as ONE JSON line.

  tools/bench/gpu_check.sh            # installs the .[gpu] extra, then runs this
  python -m tools.bench.gpu_check     # the measurements alone

On a CUDA machine: ResNet-20 (`resnet_sgd`) and WRN-28-10 (`wrn28_10_sgd`)
training images/sec at float32, mixed_float16 and mixed_float16 with XLA,
each at train.steps_per_loop 1 and 50; eval images/sec and input-pipeline
images/sec per model; the GPU's utilisation during each training measurement
(nvidia-smi sampled every SAMPLE_MS ms). Data is synthetic (no download).
Measurements run in order of importance and stop starting new ones once
--budget_secs have passed, so the whole check, install included, stays under
8 minutes on a current GPU; what did not run is null and listed in
`skipped`. Without a GPU it stops at once: `error: ...` on stderr, exit 2.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.bench.gpu_check", file=sys.stderr)
  sys.exit(2)

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("budget_secs", 300, "Start no measurement after this.")
flags.DEFINE_integer("steps", 200, "Timed training steps (ResNet-20).")
flags.DEFINE_integer("wide_steps", 100, "Timed training steps (WRN-28-10).")
flags.DEFINE_integer("warmup", 50, "Untimed first training steps.")
flags.DEFINE_integer("eval_batches", 20, "Timed eval batches.")
flags.DEFINE_integer("pipeline_batches", 300, "Timed input-pipeline batches.")

MODELS = {"resnet20": "resnet_sgd", "wrn28_10": "wrn28_10_sgd"}
PRECISIONS = {"float32": ["train.precision=float32"],
              "mixed_float16": ["train.precision=mixed_float16"],
              "mixed_float16_xla": ["train.precision=mixed_float16",
                                    "session.xla=true"]}
LOOPS = (1, 50)
SAMPLE_MS = 200


class NoGpuError(Exception):
  """No NVIDIA GPU is usable here; the message says what is missing."""


def check_gpu() -> str:
  """The GPU's name from `nvidia-smi -L`, before TensorFlow is imported.

  Raises:
    NoGpuError: nvidia-smi is missing or lists no device.
  """
  if shutil.which("nvidia-smi") is None:
    raise NoGpuError(
        "no NVIDIA GPU here: nvidia-smi is not on PATH. tools/bench/gpu_check.sh "
        "measures GPU speed and needs a CUDA machine with the NVIDIA driver; "
        "on a CPU, measure with `python -m tools.bench.loop_bench` instead.")
  listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                           text=True, timeout=60)
  gpus = [line for line in listing.stdout.splitlines() if line.startswith("GPU")]
  if listing.returncode != 0 or not gpus:
    raise NoGpuError(
        f"no NVIDIA GPU here: `nvidia-smi -L` listed none (exit "
        f"{listing.returncode}: {listing.stderr.strip()[:200]}). Check the "
        "driver (nvidia-smi must list the device), then rerun.")
  return gpus[0]


class UtilisationSampler:
  """GPU utilisation (%) from nvidia-smi, sampled in the background."""

  def __init__(self):
    self.samples = []
    self._process = subprocess.Popen(
        ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
         f"-lms={SAMPLE_MS}"], stdout=subprocess.PIPE, text=True)
    self._thread = threading.Thread(target=self._read, daemon=True)
    self._thread.start()

  def _read(self):
    for line in self._process.stdout:
      try:
        self.samples.append(float(line.split(",")[0]))
      except ValueError:
        pass

  def mean_since(self, start: int) -> float | None:
    window = self.samples[start:]
    return sum(window) / len(window) if window else None

  def close(self):
    self._process.terminate()
    self._process.wait(timeout=10)


def _config(experiment: str, extra: list[str]):
  from estimator_cifar import config as config_lib
  return config_lib.resolve(experiment, [",".join(["data.name=synthetic"] + extra)])


def measure_eval(experiment: str, batches: int) -> float:
  """Eval images/sec of `experiment` (float32) after one training step."""
  import tensorflow as tf
  from estimator_cifar.data.input_pipeline import make_input_fn
  from estimator_cifar.engine import estimator_setup
  cfg = _config(experiment, ["train.steps=1"])
  marks = []

  class Timer(tf.estimator.SessionRunHook):
    def after_run(self, run_context, run_values):
      marks.append(time.perf_counter())

  with tempfile.TemporaryDirectory() as model_dir:
    plan = estimator_setup.make_plan(cfg, None)
    estimator = estimator_setup.make_estimator(cfg, model_dir, plan)
    estimator.train(make_input_fn(cfg, plan.source, True), max_steps=1)
    estimator.evaluate(make_input_fn(cfg, plan.source, False),
                       steps=batches + 2, hooks=[Timer()])
  return batches * cfg.eval.batch_size / (marks[-1] - marks[1])


def measure_pipeline(experiment: str, batches: int) -> float:
  """Train input_fn images/sec alone (same distortions), in a session."""
  import tensorflow as tf
  from estimator_cifar.data import sources
  from estimator_cifar.data.input_pipeline import make_input_fn
  v1 = tf.compat.v1
  cfg = _config(experiment, [])
  with tf.Graph().as_default():
    dataset = make_input_fn(cfg, sources.get_source(cfg, None), True)()
    op = tf.group(tf.nest.flatten(v1.data.make_one_shot_iterator(dataset).get_next()))
    with v1.Session() as session:
      for _ in range(20):
        session.run(op)
      start = time.perf_counter()
      for _ in range(batches):
        session.run(op)
      return batches * cfg.train.batch_size / (time.perf_counter() - start)


def plan() -> list[tuple[str, ...]]:
  """Every measurement, most important first."""
  jobs = [("pipeline", "resnet20")]
  for model in MODELS:
    for precision in PRECISIONS:
      for loop in LOOPS:
        jobs.append(("train", model, precision, str(loop)))
    jobs.append(("eval", model))
  return jobs


def run_all(measure, budget_secs: float, clock=time.monotonic) -> dict:
  """Runs `measure(job)` for each job of `plan()` until the budget is spent.

  `measure` returns a dict of figures; a job not started in time, or that
  failed, is null in the result and listed (with the reason) in `skipped`.
  """
  start, result, skipped = clock(), {}, {}
  for job in plan():
    key = "/".join(job)
    if clock() - start > budget_secs:
      result[key], skipped[key] = None, "budget spent"
      continue
    try:
      result[key] = measure(job)
    except Exception as e:  # pylint: disable=broad-except
      result[key], skipped[key] = None, f"{type(e).__name__}: {str(e)[:300]}"
  return {"results": result, "skipped": skipped,
          "seconds": round(clock() - start, 1)}


def measure_job(job, sampler: UtilisationSampler) -> dict:
  """One measurement of `plan()` on this machine."""
  from . import loop_bench
  kind, model = job[0], job[1]
  experiment = MODELS[model]
  if kind == "pipeline":
    return {"images_per_sec": measure_pipeline(experiment, FLAGS.pipeline_batches)}
  if kind == "eval":
    return {"images_per_sec": measure_eval(experiment, FLAGS.eval_batches)}
  precision, loop = job[2], int(job[3])
  steps = FLAGS.steps if model == "resnet20" else FLAGS.wide_steps
  unit = max(LOOPS)
  first = len(sampler.samples)
  figures = loop_bench.measure(
      experiment, ",".join(PRECISIONS[precision]), "synthetic", loop,
      -(-steps // unit) * unit, -(-FLAGS.warmup // unit) * unit)
  return {"images_per_sec": figures["images_per_sec"],
          "gpu_utilisation_pct": sampler.mean_since(first)}


def main(argv):
  del argv
  try:
    gpu = check_gpu()
  except NoGpuError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  import tensorflow as tf
  if not tf.config.list_physical_devices("GPU"):
    print("error: nvidia-smi lists a GPU but TensorFlow sees none: install "
          "the CUDA libraries with `pip install -e '.[gpu]'` (tools/"
          "gpu_check.sh does) and rerun.", file=sys.stderr)
    sys.exit(2)
  sampler = UtilisationSampler()
  try:
    outcome = run_all(lambda job: measure_job(job, sampler), FLAGS.budget_secs)
  finally:
    sampler.close()
  outcome.update(gpu=gpu, tensorflow=tf.__version__, batch_size=128,
                 data="synthetic")
  print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
  app.run(main)
