#!/usr/bin/env python
r"""Speed of an experiment on this machine, printed as ONE JSON line (last line).

Usage (from the repository root):

  python tools/benchmark.py --experiment=resnet_sgd --data=synthetic \
      [--params_override=a.b=v,...] [--steps=100] [--warmup=20] [--repeats=1] \
      [--vs-keras] [--vs-minimal] [--pipeline_threads=1,2] [--skip=eval,...]

`--data` is `synthetic` (random CIFAR-shaped images, no files) or a data_dir
as `run.py --data_dir` takes it. Everything runs the package's own path:
`train_lib.make_plan`, `make_estimator`, `make_input_fn`, i.e. the Estimator
with every feature the experiment has on (EMA, summaries at their cadence,
step logging, eval metrics). Two settings are changed for the measurement and
reported in `forced_overrides`: `train.steps` (warm-up + timed steps) and
`checkpoint.save_secs` (1 day, so that no checkpoint is written inside the
timed steps; the Estimator still writes one before the first step and one
after the last, outside the timing).

Every rate comes twice: `..._per_sec` (wall clock: the figure that matters on
a machine of one's own) and `..._per_cpu_sec` (per second of this process's
CPU time, all threads: nearly unaffected by other processes, so the figure to
compare configurations with on a shared, loaded machine; it cannot show how
well work spreads over cores). Ratios and targets are given both ways.

Fields of the JSON line:
- train_images_per_sec: steady state. A SessionRunHook takes the time after
  every step; the first `--warmup` steps are dropped and the rest split into
  `--windows` windows; the figure is the median of the windows' rates (robust
  to a neighbour's burst). `train_images_per_sec_mean` is the plain mean over
  all timed steps. With `--repeats` > 1 each figure is the median over the
  repeats, and the training measurements alternate with the peers'.
- input_pipeline_images_per_sec: the same train input_fn (same distortions,
  shuffle and batching), iterated in a graph-mode session with no model and
  the same session settings. `input_pipeline_by_threads` repeats it with
  tf.data's private thread pool limited to each `--pipeline_threads` value:
  how far the pipeline scales with cores.
- eval_images_per_sec: `estimator.evaluate` on the eval split (metrics on),
  timed by the same hook, the first `--eval_warmup` batches dropped.
- seconds_to_first_step: from the process's creation (psutil; else the first
  line of this script, before TensorFlow is imported) to the end of the first
  training step: imports, graph building, variable initialization, the
  initial checkpoint and the input pipeline's start included.
  cpu_seconds_to_first_step: the CPU time this process had used by then.
- peak_rss_mb: this process's peak resident memory (getrusage) after the
  first measurements; the peers run as child processes and are not included.
- model_flops_per_image: forward-pass FLOPs of the inference graph (batch 1)
  counted by tf.compat.v1.profiler (float_operation: Conv2D, MatMul and the
  element-wise ops it has statistics for). conv_matmul_flops_per_image counts
  only Conv2D/MatMul from the graph's shapes (2 x multiply-adds);
  train_flops_per_image is 3x that (forward, input gradient, weight gradient:
  the usual convention; it overstates by the first conv's input gradient,
  which is not computed: under 1% for ResNet-20).
- conv_peak_gflops: the best of the conv probes of ../shared/bench/
  peak_flops.py (3x3 convs at batch 128, 32x32x16 and 8x8x64: ResNet-20's
  first and last stages), measured in this process after the first training
  run and again at the end, median of the trials, in the training's compute
  dtype (`peak_gflops` lists every probe). achieved_fraction_of_peak =
  train_images_per_sec x train_flops_per_image / conv_peak_gflops.
- keras_images_per_sec (`--vs-keras`): `peer_keras.py` (tf.keras model.fit,
  same network, batch and augmentation, data in memory) run as a child process
  right after each training measurement; ratio_vs_keras = train / keras. Its
  CPU time is taken over its own timed section (see PEER_WRAPPER).
- minimal_images_per_sec (`--vs-minimal`): tools/minimal_estimator.py, the
  60-line hand-written Estimator, by its own timing (which includes its second
  train() call's graph building); with --data=synthetic it trains on noise
  written in the CIFAR-10 binary layout.
- targets: issue 8's targets, each with its value, bound and whether it is met
  (wall clock and CPU time).
- machine: CPU count and model, load average before and after (load above the
  CPU count means the wall-clock figures are low: read the _cpu figures), TF
  version, GPUs; notes: anything skipped, and why.
"""

import time

START = time.time()  # Before TensorFlow is imported; psutil refines it below.

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import dataclasses
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

from estimator_cifar import config as config_lib
from estimator_cifar.errors import UserError

# The peer script lives beside the repository in the shared workspace; CI may
# not have it, in which case --vs-keras reports null with a note.
KERAS_PEER_CANDIDATES = (
    os.path.join(REPO_ROOT, "..", "shared", "bench", "peer_keras.py"),
    "/work/shared/bench/peer_keras.py")
MINIMAL_PEER = os.path.join(REPO_ROOT, "tools", "minimal_estimator.py")
MINIMAL_WARMUP_STEPS = 10  # minimal_estimator.py's own untimed first call.
CHECKPOINT_SECS = 86400  # No checkpoint inside the timed steps.
SKIPPABLE = ("eval", "pipeline", "peak", "flops")

# Issue 8's targets on the 2-core CPU machine (ResNet-20, batch 128).
TARGETS = {
    "ratio_vs_keras": (">=", 2.0),
    "achieved_fraction_of_peak": (">=", 0.65),
    "input_pipeline_vs_train": (">=", 4.0),
    "seconds_to_first_step": ("<=", 15.0),
    "peak_rss_mb": ("<", 2048.0),
    "eval_vs_train": (">=", 3.0),
}

# Runs a peer script with time.perf_counter wrapped so that each call also
# records process CPU time; the peers time their measured section with two
# perf_counter calls (nothing in TF, Keras or Estimator calls it), so the last
# two marks bracket it. Prints wall and CPU seconds of that section.
PEER_WRAPPER = """
import runpy, sys, time
_wall, _marks = time.perf_counter, []
def _mark():
  _marks.append((_wall(), time.process_time()))
  return _marks[-1][0]
time.perf_counter = _mark
sys.argv = sys.argv[1:]
try:
  runpy.run_path(sys.argv[0], run_name="__main__")
finally:
  if len(_marks) >= 2:
    (w0, c0), (w1, c1) = _marks[-2], _marks[-1]
    print(f"benchmark_peer_section wall={w1 - w0:.6f} cpu={c1 - c0:.6f}", flush=True)
"""
KERAS_LINE = re.compile(r"images/sec\s+([0-9.]+)")
MINIMAL_LINE = re.compile(r"train_images_per_sec=([0-9.]+)")
SECTION_LINE = re.compile(r"benchmark_peer_section wall=([0-9.]+) cpu=([0-9.]+)")


@dataclasses.dataclass
class Rate:
  """Images (or GFLOP) per second of wall clock and per CPU-second."""
  wall: float | None = None
  cpu: float | None = None


def process_start() -> float:
  """When this process was created (psutil), else when this script began."""
  try:
    import psutil
    return min(START, psutil.Process().create_time())
  except Exception:  # pylint: disable=broad-except
    return START


# ------------------------------------------------------------------ statistics

def window_rates(marks: list[float], batch: int, warmup: int,
                 windows: int) -> list[float]:
  """Images/sec of each of `windows` equal runs of steps after `warmup`.

  `marks` are clock readings taken as each step ended (wall or CPU); step i
  lasted marks[i] - marks[i-1], so the timed steps are those after index
  `warmup`.
  """
  marks = marks[warmup:]
  steps = len(marks) - 1
  if steps < 1:
    return []
  windows = max(1, min(windows, steps))
  edges = [round(i * steps / windows) for i in range(windows + 1)]
  return [(b - a) * batch / (marks[b] - marks[a])
          for a, b in zip(edges, edges[1:]) if b > a and marks[b] > marks[a]]


def mean_rate(marks: list[float], batch: int, warmup: int) -> float | None:
  """Images/sec over all steps after `warmup`."""
  marks = marks[warmup:]
  if len(marks) < 2 or marks[-1] <= marks[0]:
    return None
  return (len(marks) - 1) * batch / (marks[-1] - marks[0])


def median(values):
  """Median of the values that are not None; None if there are none."""
  values = [v for v in values if v is not None]
  return statistics.median(values) if values else None


def steady_rate(timer, batch: int, warmup: int, windows: int) -> Rate:
  """Median-of-windows wall and CPU rates of a StepTimer's steps."""
  return Rate(median(window_rates(timer.wall, batch, warmup, windows)),
              median(window_rates(timer.cpu, batch, warmup, windows)))


# ------------------------------------------------------------------ peers

def parse_peer(output: str, pattern: re.Pattern) -> Rate | None:
  """The peer's own wall rate, and its CPU rate from the wrapper's line."""
  found = pattern.findall(output)
  if not found:
    return None
  rate = Rate(float(found[-1]))
  section = SECTION_LINE.findall(output)
  if section and float(section[-1][1]) > 0:
    wall, cpu = (float(x) for x in section[-1])
    rate.cpu = rate.wall * wall / cpu
  return rate


def find_keras_peer(path: str = "") -> str | None:
  """`path` if given and present, else the first known location present."""
  for candidate in ([path] if path else KERAS_PEER_CANDIDATES):
    if os.path.isfile(candidate):
      return os.path.abspath(candidate)
  return None


def keras_model_name(cfg) -> str | None:
  """The Keras peer's name for this experiment's network, None if it has none."""
  m = cfg.model
  if m.name == "resnet" and m.depth == 20 and m.version == 1:
    return "resnet20"
  if m.name == "convnet":
    return "convnet"
  return None


def run_peer(script: str, args: list[str], pattern: re.Pattern,
             timeout: float) -> tuple[Rate | None, str | None]:
  """Runs a peer script under PEER_WRAPPER; returns (rate or None, note)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
  name = os.path.basename(script)
  try:
    proc = subprocess.run([sys.executable, "-c", PEER_WRAPPER, script, *args],
                          capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO_ROOT)
  except subprocess.TimeoutExpired:
    return None, f"{name} timed out after {timeout:.0f}s"
  rate = parse_peer(proc.stdout, pattern)
  if rate is None:
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    return None, f"{name} exited {proc.returncode} without a rate: {' | '.join(tail)}"
  return rate, None


# ------------------------------------------------------------------ TF parts

def _tf():
  import tensorflow as tf
  return tf


def step_timer():
  """A SessionRunHook that reads the wall and CPU clocks after every step.

  Defined on call so that TensorFlow is imported only after the config is
  checked (a typo in an override is answered at once).
  """
  tf = _tf()

  class StepTimer(tf.estimator.SessionRunHook):

    def __init__(self):
      self.wall = []  # perf_counter() after each step.
      self.cpu = []  # process_time() (all threads) after each step.
      self.first_step_end = None  # time.time() after the first.
      self.first_step_cpu = None  # process_time() after the first.

    def after_run(self, run_context, run_values):
      del run_context, run_values
      self.wall.append(time.perf_counter())
      self.cpu.append(time.process_time())
      if self.first_step_end is None:
        self.first_step_end = time.time()
        self.first_step_cpu = self.cpu[-1]

  return StepTimer()


def measure_pipeline(cfg, input_fn, batch: int, batches: int, warmup: int,
                     windows: int, threads: int = 0) -> Rate:
  """Images/sec of `input_fn` alone, in a graph-mode session.

  Runs a group of the batch tensors (no copy into Python), so what is timed
  is tf.data producing batches. `threads` > 0 limits tf.data's private thread
  pool to that many threads.
  """
  tf = _tf()
  from estimator_cifar import train_lib
  v1 = tf.compat.v1
  with tf.Graph().as_default():
    ds = input_fn()
    if threads:
      options = tf.data.Options()
      options.threading.private_threadpool_size = threads
      ds = ds.with_options(options)
    iterator = v1.data.make_initializable_iterator(ds)
    op = tf.group(tf.nest.flatten(iterator.get_next()))
    wall, cpu = [], []
    with v1.Session(config=train_lib.session_config(cfg)) as sess:
      sess.run(iterator.initializer)
      for _ in range(warmup + batches + 1):
        sess.run(op)
        wall.append(time.perf_counter())
        cpu.append(time.process_time())
  return Rate(median(window_rates(wall, batch, warmup, windows)),
              median(window_rates(cpu, batch, warmup, windows)))


def count_flops(cfg, num_classes: int) -> dict:
  """Forward FLOPs per image of the inference graph (batch 1, float32)."""
  tf = _tf()
  from estimator_cifar import models
  v1 = tf.compat.v1
  size = cfg.data.image_size
  with tf.Graph().as_default() as graph:
    images = v1.placeholder(tf.float32, [1, size, size, 3])
    models.build(cfg.model, num_classes)(images, False)
    options = (v1.profiler.ProfileOptionBuilder(
        v1.profiler.ProfileOptionBuilder.float_operation())
               .with_empty_output().build())
    profiled = v1.profiler.profile(graph, cmd="op", options=options)
    conv_matmul = 0
    for op in graph.get_operations():
      if op.type == "Conv2D":
        out = op.outputs[0].shape.as_list()
        kh, kw, cin, _ = op.inputs[1].shape.as_list()
        conv_matmul += 2 * out[1] * out[2] * out[3] * kh * kw * cin
      elif op.type == "MatMul":
        a, out = op.inputs[0].shape.as_list(), op.outputs[0].shape.as_list()
        inner = a[0] if op.get_attr("transpose_a") else a[1]
        conv_matmul += 2 * out[0] * out[1] * inner
  return {"model_flops_per_image": int(profiled.total_float_ops),
          "conv_matmul_flops_per_image": int(conv_matmul),
          "train_flops_per_image": int(3 * conv_matmul)}


PEAK_DTYPES = {"float32": "float32", "mixed_float16": "float16",
               "mixed_bfloat16": "bfloat16"}


def measure_peak(dtype: str = "float32", trials: int = 3, reps: int = 10,
                 matmul: bool = True) -> dict[str, list[Rate]]:
  """GFLOP/s of peak_flops.py's probes (eager, default device), per trial.

  The probes of ../shared/bench/peak_flops.py: 3x3 convs at batch 128 on
  32x32x16 and 8x8x64, and a 2048^2 matmul; each trial times `reps` calls
  (a third as many for the matmul) after one untimed call.
  """
  tf = _tf()
  dt = tf.as_dtype(dtype)

  def trial(fn, flops, n):
    fn().numpy()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
      out = fn()
    out.numpy()  # Waits for an asynchronous device (GPU).
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Rate(flops * n / wall / 1e9, flops * n / cpu / 1e9 if cpu else None)

  def normal(shape):
    return tf.cast(tf.random.normal(shape), dt)

  x, k = normal([128, 32, 32, 16]), normal([3, 3, 16, 16])
  x3, k3 = normal([128, 8, 8, 64]), normal([3, 3, 64, 64])
  probes = {
      "conv3x3_32x32x16": (tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME")),
                           2 * 128 * 32 * 32 * 16 * 16 * 9, reps),
      "conv3x3_8x8x64": (tf.function(lambda: tf.nn.conv2d(x3, k3, 1, "SAME")),
                         2 * 128 * 8 * 8 * 64 * 64 * 9, reps),
  }
  if matmul:
    a, b = normal([2048, 2048]), normal([2048, 2048])
    probes["matmul_2048"] = (tf.function(lambda: tf.matmul(a, b)),
                             2 * 2048 ** 3, max(1, reps // 3))
  return {name: [trial(fn, flops, n) for _ in range(trials)]
          for name, (fn, flops, n) in probes.items()}


def machine_info() -> dict:
  """What the figures were measured on."""
  tf = _tf()
  model = ""
  try:
    with open("/proc/cpuinfo") as f:
      model = next((l.split(":", 1)[1].strip() for l in f
                    if l.startswith("model name")), "")
  except OSError:
    pass
  return {"cpu_count": os.cpu_count(), "cpu_model": model,
          "tf_version": tf.__version__,
          "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def _load() -> list[float]:
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return []


# ------------------------------------------------------------------ main

def build_config(experiment: str, overrides: str, data: str, steps: int):
  """Experiment, then --data, the user's overrides, the benchmark's settings."""
  front = ["data.name=synthetic"] if data == "synthetic" else []
  forced = [f"train.steps={steps}", f"checkpoint.save_secs={CHECKPOINT_SECS}",
            "checkpoint.save_steps=0"]
  user = [overrides] if overrides else []
  cfg = config_lib.resolve(experiment, [",".join(front + user + forced)])
  return cfg, forced


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--experiment", default="resnet_sgd")
  p.add_argument("--params_override", default="")
  p.add_argument("--data", default="synthetic",
                 help="'synthetic' or a data_dir (as run.py --data_dir)")
  p.add_argument("--steps", type=int, default=100, help="timed training steps")
  p.add_argument("--warmup", type=int, default=20, help="untimed first steps")
  p.add_argument("--windows", type=int, default=5)
  p.add_argument("--repeats", type=int, default=1,
                 help="training (+ peer) measurements, alternating; medians")
  p.add_argument("--eval_steps", type=int, default=0,
                 help="eval batches (0: the whole eval split)")
  p.add_argument("--eval_warmup", type=int, default=2)
  p.add_argument("--pipeline_steps", type=int, default=0,
                 help="batches timed for the pipeline alone (0: 3 x --steps)")
  p.add_argument("--pipeline_threads", default="",
                 help="comma-separated tf.data thread-pool sizes to scan")
  p.add_argument("--peak_trials", type=int, default=3)
  p.add_argument("--peak_reps", type=int, default=10,
                 help="calls per peak trial (a third of it for the matmul)")
  p.add_argument("--skip", default="",
                 help=f"comma-separated parts to leave out: {','.join(SKIPPABLE)}")
  p.add_argument("--vs-keras", dest="vs_keras", action="store_true")
  p.add_argument("--keras_peer", default="", help="path of peer_keras.py")
  p.add_argument("--vs-minimal", dest="vs_minimal", action="store_true")
  p.add_argument("--peer_timeout", type=float, default=1800)
  p.add_argument("--model_dir", default="", help="default: a temporary dir")
  p.add_argument("--verbose", action="store_true")
  args = p.parse_args(argv)
  args.skip = {s for s in args.skip.split(",") if s}
  unknown = args.skip - set(SKIPPABLE)
  if unknown:
    p.error(f"--skip: unknown {', '.join(sorted(unknown))}; choose from "
            f"{', '.join(SKIPPABLE)}")
  return args


def main(argv=None) -> dict:
  """Runs the benchmark; prints the JSON line and returns it as a dict."""
  args = parse_args(argv)
  started = process_start()
  cfg, forced = build_config(args.experiment, args.params_override, args.data,
                             args.warmup + args.steps)
  tf = _tf()
  from estimator_cifar import train_lib
  from estimator_cifar.datasets.input_pipeline import make_input_fn
  tf.get_logger().setLevel("INFO" if args.verbose else "WARNING")
  notes, load_start = [], _load()
  data_dir = None if args.data == "synthetic" else args.data
  model_dir = args.model_dir or tempfile.mkdtemp(prefix="benchmark_")
  batch = cfg.train.batch_size
  peers = _peers(args, cfg, model_dir, notes)
  train_runs, peer_runs = [], {name: [] for name in peers}
  eval_rate = pipeline_rate = Rate()
  by_threads, peak, flops, rss, first_step = {}, {}, {}, None, None
  try:
    plan = train_lib.make_plan(cfg, data_dir)
    train_input = make_input_fn(cfg, plan.source, training=True)
    estimator = train_lib.make_estimator(cfg, model_dir, plan)
    for repeat in range(args.repeats):
      timer = step_timer()
      estimator.train(train_input, steps=args.warmup + args.steps, hooks=[timer])
      if first_step is None:
        first_step = (timer.first_step_end - started, timer.first_step_cpu)
      train_runs.append((steady_rate(timer, batch, args.warmup, args.windows),
                         mean_rate(timer.wall, batch, args.warmup),
                         window_rates(timer.wall, batch, args.warmup,
                                      args.windows)))
      if repeat == 0:
        eval_rate, pipeline_rate, by_threads = _other_rates(
            args, cfg, plan, estimator, train_input)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        if "flops" not in args.skip:
          flops = count_flops(cfg, plan.source.num_classes)
        if "peak" not in args.skip:
          _extend(peak, measure_peak(PEAK_DTYPES[cfg.train.precision],
                                     args.peak_trials, args.peak_reps))
      for name, (script, peer_args, pattern) in peers.items():
        rate, note = run_peer(script, peer_args(repeat), pattern,
                              args.peer_timeout)
        peer_runs[name].append(rate)
        if note:
          notes.append(note)
    if "peak" not in args.skip:
      _extend(peak, measure_peak(PEAK_DTYPES[cfg.train.precision],
                                 args.peak_trials, args.peak_reps, matmul=False))
    info = machine_info()
  finally:
    if not args.model_dir:
      shutil.rmtree(model_dir, ignore_errors=True)
  train = Rate(median([r[0].wall for r in train_runs]),
               median([r[0].cpu for r in train_runs]))
  result = _report(args, cfg, forced, notes, info, load_start, train, train_runs,
                   eval_rate, pipeline_rate, by_threads, peak, flops, rss,
                   first_step, peer_runs)
  print(json.dumps(result), flush=True)
  return result


def _other_rates(args, cfg, plan, estimator, train_input):
  """Eval, pipeline-alone and per-thread pipeline rates (unless skipped)."""
  from estimator_cifar.datasets.input_pipeline import make_input_fn
  eval_rate, pipeline_rate, by_threads = Rate(), Rate(), {}
  if "eval" not in args.skip:
    timer = step_timer()
    estimator.evaluate(make_input_fn(cfg, plan.source, training=False),
                       steps=args.eval_steps or None, hooks=[timer])
    eval_rate = steady_rate(timer, cfg.eval.batch_size, args.eval_warmup,
                            args.windows)
  if "pipeline" not in args.skip:
    batches = args.pipeline_steps or 3 * args.steps
    measure = lambda threads: measure_pipeline(
        cfg, train_input, cfg.train.batch_size, batches, args.warmup,
        args.windows, threads)
    pipeline_rate = measure(0)
    for n in [int(t) for t in args.pipeline_threads.split(",") if t]:
      by_threads[str(n)] = measure(n)
  return eval_rate, pipeline_rate, by_threads


def _peers(args, cfg, model_dir: str, notes: list[str]) -> dict:
  """{name: (script, fn(repeat) -> args, rate pattern)} of the requested peers."""
  peers = {}
  batch, steps, warmup = cfg.train.batch_size, args.steps, args.warmup
  if args.vs_keras:
    script, model = find_keras_peer(args.keras_peer), keras_model_name(cfg)
    if script is None:
      looked = [args.keras_peer] if args.keras_peer else KERAS_PEER_CANDIDATES
      notes.append(f"--vs-keras skipped: peer_keras.py not found (looked at "
                   f"{', '.join(looked)}); pass --keras_peer=PATH.")
    elif model is None:
      notes.append(f"--vs-keras skipped: the Keras peer has no network like "
                   f"model.name={cfg.model.name} depth={cfg.model.depth} "
                   f"version={cfg.model.version} (it has ResNet-20 v1 and the "
                   "tutorial convnet).")
    else:
      if cfg.train.precision != "float32":
        notes.append(f"The Keras peer trains in float32; this run in "
                     f"{cfg.train.precision}.")
      peers["keras"] = (script, lambda r: [
          "--steps", str(steps), "--warmup", str(warmup), "--batch", str(batch),
          "--model", model], KERAS_LINE)
  if args.vs_minimal and keras_model_name(cfg) != "resnet20":
    notes.append("--vs-minimal skipped: the minimal peer is ResNet-20 v1 only.")
  elif args.vs_minimal:
    data_dir, note = _minimal_data(args.data, model_dir)
    if note:
      notes.append(note)
    if data_dir:
      peers["minimal"] = (MINIMAL_PEER, lambda r: [
          "--data_dir", data_dir, "--model_dir",
          os.path.join(model_dir, f"minimal{r}"),
          "--steps", str(steps + MINIMAL_WARMUP_STEPS), "--batch", str(batch)],
                          MINIMAL_LINE)
  return peers


def _minimal_data(data: str, model_dir: str):
  """A data_dir the minimal peer reads (noise records for synthetic), note."""
  if data != "synthetic":
    if os.path.isdir(os.path.join(data, "cifar-10-batches-bin")):
      return data, None
    return None, ("--vs-minimal skipped: the minimal peer reads CIFAR-10 "
                  f"binaries only (<data_dir>/cifar-10-batches-bin); none under "
                  f"{data}.")
  from estimator_cifar.datasets import fake
  folder = os.path.join(model_dir, "minimal_data")
  fake.write_cifar10(folder, train_per_file=2000, test=500, easy=False)
  return folder, ("--vs-minimal with --data=synthetic: the minimal peer trains "
                  "on 10000 noise records in the CIFAR-10 binary layout.")


def _report(args, cfg, forced, notes, info, load_start, train, train_runs,
            eval_rate, pipeline_rate, by_threads, peak, flops, rss, first_step,
            peer_runs) -> dict:
  """The JSON line's dict (see the module docstring for every field)."""
  peaks = {name: Rate(median([r.wall for r in rates]),
                      median([r.cpu for r in rates]))
           for name, rates in peak.items()}
  convs = [r for name, r in peaks.items() if name.startswith("conv")]
  conv_peak = Rate(max((r.wall for r in convs), default=None),
                   max((r.cpu for r in convs if r.cpu), default=None))
  per_image = flops.get("train_flops_per_image")
  achieved = Rate(*(rate * per_image / 1e9 if rate and per_image else None
                    for rate in (train.wall, train.cpu)))
  peers = {name: Rate(median([r.wall for r in runs if r]),
                      median([r.cpu for r in runs if r]))
           for name, runs in peer_runs.items()}
  if not info["gpus"]:
    notes.append("No GPU visible: every figure is a CPU figure.")
  if load_start and info["cpu_count"] and load_start[0] > info["cpu_count"]:
    notes.append(f"Machine loaded (load average {load_start[0]} on "
                 f"{info['cpu_count']} CPUs): wall-clock rates are low and "
                 "noisy; compare the _per_cpu_sec figures and their ratios.")
  result = {
      "experiment": cfg.name,
      "params_override": args.params_override,
      "forced_overrides": ",".join(forced),
      "data": args.data,
      "model": cfg.model.name, "depth": cfg.model.depth,
      "precision": cfg.train.precision, "xla": cfg.session.xla,
      "batch_size": cfg.train.batch_size,
      "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
      "train_images_per_sec": _round(train.wall),
      "train_images_per_cpu_sec": _round(train.cpu),
      "train_images_per_sec_mean": _round(median([r[1] for r in train_runs])),
      "train_images_per_sec_windows": [[_round(w) for w in r[2]]
                                       for r in train_runs],
      "input_pipeline_images_per_sec": _round(pipeline_rate.wall),
      "input_pipeline_images_per_cpu_sec": _round(pipeline_rate.cpu),
      "input_pipeline_by_threads": {n: _round(r.wall)
                                    for n, r in by_threads.items()},
      "eval_images_per_sec": _round(eval_rate.wall),
      "eval_images_per_cpu_sec": _round(eval_rate.cpu),
      "seconds_to_first_step": _round(first_step[0], 2),
      "cpu_seconds_to_first_step": _round(first_step[1], 2),
      "peak_rss_mb": _round(rss),
      **flops,
      "flops_method": (
          "model_flops_per_image: tf.compat.v1.profiler float_operation on the "
          "forward inference graph (batch 1); train_flops_per_image = 3 x the "
          "forward Conv2D/MatMul FLOPs counted from the graph's shapes"),
      "peak_dtype": PEAK_DTYPES[cfg.train.precision],
      "peak_gflops": {n: _round(r.wall) for n, r in peaks.items()},
      "peak_gflops_per_cpu_sec": {n: _round(r.cpu) for n, r in peaks.items()},
      "conv_peak_gflops": _round(conv_peak.wall),
      "conv_peak_gflops_per_cpu_sec": _round(conv_peak.cpu),
      "achieved_gflops": _round(achieved.wall),
      "achieved_gflops_per_cpu_sec": _round(achieved.cpu),
      "achieved_fraction_of_peak": _ratio(achieved.wall, conv_peak.wall),
      "achieved_fraction_of_peak_cpu": _ratio(achieved.cpu, conv_peak.cpu),
      "input_pipeline_vs_train": _ratio(pipeline_rate.wall, train.wall),
      "input_pipeline_vs_train_cpu": _ratio(pipeline_rate.cpu, train.cpu),
      "eval_vs_train": _ratio(eval_rate.wall, train.wall),
      "eval_vs_train_cpu": _ratio(eval_rate.cpu, train.cpu),
  }
  for name in ("keras", "minimal"):
    rate = peers.get(name, Rate())
    result.update({
        f"{name}_images_per_sec": _round(rate.wall),
        f"{name}_images_per_cpu_sec": _round(rate.cpu),
        f"ratio_vs_{name}": _ratio(train.wall, rate.wall),
        f"ratio_vs_{name}_cpu": _ratio(train.cpu, rate.cpu),
        f"{name}_runs": [_round(r.wall) if r else None
                         for r in peer_runs.get(name, [])],
    })
  result["machine"] = dict(info, load_avg_start=load_start, load_avg_end=_load())
  result["notes"] = notes
  result["targets"] = targets(result)
  return result


def targets(result: dict) -> dict:
  """Each issue-8 target: value (wall and CPU time), bound, met (None: not measured)."""

  def met(value, op, bound):
    if value is None:
      return None
    return value >= bound if op == ">=" else value <= bound if op == "<=" \
        else value < bound

  out = {}
  for key, (op, bound) in TARGETS.items():
    value, value_cpu = result.get(key), result.get(key + "_cpu")
    out[key] = {"value": value, "met": met(value, op, bound),
                "target": f"{op} {bound:g}"}
    if key + "_cpu" in result:
      out[key].update(value_cpu=value_cpu, met_cpu=met(value_cpu, op, bound))
  return out


def _extend(store: dict, more: dict) -> None:
  for name, values in more.items():
    store.setdefault(name, []).extend(values)


def _round(value, digits: int = 1):
  return None if value is None else round(float(value), digits)


def _ratio(a, b):
  return round(a / b, 3) if a and b else None


if __name__ == "__main__":
  try:
    main()
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
