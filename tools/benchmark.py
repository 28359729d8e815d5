r"""Speed of an experiment on the local CPU or GPU, as ONE JSON line (the last).

Usage (from the repository root):

  python -m tools.benchmark --experiment=resnet_sgd [--data_dir=DIR] \
      [--params_override=a.b=v,...] [--steps=100] [--warmup=20] [--repeats=1] \
      [--vs_keras] [--vs_minimal] [--pipeline_threads=1,2] [--skip=eval,...] \
      [--precisions=float32,mixed_bfloat16]

Without `--data_dir` it trains on synthetic data (random CIFAR-shaped images,
no files); with it, on the data there as `run.py --data_dir` reads it
(`"data"` in the JSON line says which). Everything runs the package's own path:
`estimator_setup.make_plan`, `make_estimator`, `make_input_fn`, i.e. the Estimator
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
- conv_peak_gflops: the best of the conv probes (3x3 convs at batch 128,
  32x32x16 and 8x8x64: ResNet-20's first and last stages), measured in this
  process after the first training run and again at the end, median of the
  trials, in the training's compute dtype (`peak_gflops` lists every probe).
  achieved_fraction_of_peak = train_images_per_sec x train_flops_per_image /
  conv_peak_gflops.
- keras_images_per_sec (`--vs_keras`): tools/bench/peer_keras.py (tf.keras model.fit,
  same network, batch and augmentation, data in memory) run as a child process
  right after each training measurement, in float32 as a user runs it by
  default (keras_precision); ratio_vs_keras = train / keras. Its CPU time is
  taken over its own timed section (see bench/peers.py PEER_WRAPPER); keras_runs
  lists each repeat's wall rate (null: that run gave none, see notes).
- keras_same_precision_images_per_sec (`--vs_keras` when train.precision is
  not float32): the same peer again, right after the float32 one, under the
  Keras global mixed-precision policy of the run's own precision
  (keras_same_precision_precision, e.g. mixed_bfloat16; set by the wrapper
  before the script starts), so that bf16 or fp16 is compared like with like.
  With _per_cpu_sec, ratio_vs_keras_same_precision(_cpu) and _runs as for
  the float32 peer; all null in a float32 run. The target stays on
  ratio_vs_keras.
- minimal_images_per_sec (`--vs_minimal`): tools/bench/minimal_estimator.py, the
  short hand-written Estimator, by its own timing (which includes its second
  train() call's graph building); without --data_dir it trains on noise
  written in the CIFAR-10 binary layout. Every peer field is null when the
  peer did not run; a note says why.
- by_precision (`--precisions=A,B,...`): the training rate in each
  precision, measured side by side in this process: A is the run's own
  precision (every other field is A's), and in each repeat every other
  precision's Estimator (own model_dir, same input_fn) trains right after A's
  run, so the runs alternate. Per precision: images_per_sec and
  images_per_cpu_sec (medians over the repeats), runs (each repeat's wall
  rate), ratio and ratio_cpu (over A's medians).
- targets: the speed goals in TARGETS, each with its value, bound and whether it is met
  (wall clock and CPU time).
- machine: CPU count and model, load average before and after (load above the
  CPU count means the wall-clock figures are low: read the _cpu figures), TF
  version, GPUs; notes: anything skipped, and why.

This module is the command line; bench/measure.py measures in this process,
bench/peers.py runs the peers, bench/report.py builds the JSON line.
"""

import time

START = time.time()  # Before TensorFlow is imported; psutil refines it below.

# pylint: disable=g-import-not-at-top,wrong-import-position
import json
import os
import resource
import shutil
import sys
import tempfile
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.benchmark", file=sys.stderr)
  sys.exit(2)

from absl import flags

from estimator_cifar import config as config_lib
from estimator_cifar import paths
from estimator_cifar.errors import UserError
from . import cli
from .bench import report as bench_report
from .bench.measure import (PEAK_DTYPES, count_flops, load_average,
                                 machine_info, mean_rate, measure_peak,
                                 measure_pipeline, steady_rate, step_timer,
                                 window_rates)
from .bench.peers import build_peers
from .bench.report import Measurements

CHECKPOINT_SECS = 86400  # No checkpoint inside the timed steps.
SKIPPABLE = ("eval", "pipeline", "peak", "flops")

# What this package aims for on a 2-core CPU (ResNet-20, batch 128).
TARGETS = {
    "ratio_vs_keras": (">=", 2.0),
    "achieved_fraction_of_peak": (">=", 0.65),
    "input_pipeline_vs_train": (">=", 4.0),
    "seconds_to_first_step": ("<=", 15.0),
    "peak_rss_mb": ("<", 2048.0),
    "eval_vs_train": (">=", 3.0),
}


def process_start() -> float:
  """When this process was created (psutil), else when this script began."""
  try:
    import psutil
    return min(START, psutil.Process().create_time())
  except Exception:  # pylint: disable=broad-except
    return START


def build_config(experiment: str, overrides: str, data_dir: str | None,
                 steps: int, own_precision: str | None = None):
  """Experiment, then synthetic data without a data_dir, the user's
  overrides, the benchmark's settings (`own_precision`: the first of
  --precisions)."""
  front = [] if data_dir else ["data.name=synthetic"]
  forced = [f"train.steps={steps}", f"checkpoint.save_secs={CHECKPOINT_SECS}",
            "checkpoint.save_steps=0"]
  if own_precision:
    forced.append(f"train.precision={own_precision}")
  user = [overrides] if overrides else []
  cfg = config_lib.resolve(experiment, [",".join(front + user + forced)])
  return cfg, forced


FLAGS = flags.FlagValues()
flags.DEFINE_string("experiment", "resnet_sgd", "Experiment name or file.",
                    flag_values=FLAGS)
flags.DEFINE_string("params_override", "", "a.b=v,... on top of it.",
                    flag_values=FLAGS)
flags.DEFINE_string("data_dir", None, "CIFAR data as run.py reads it; "
                    "default: synthetic data.", flag_values=FLAGS)
flags.DEFINE_integer("steps", 100, "Timed training steps.", flag_values=FLAGS)
flags.DEFINE_integer("warmup", 20, "Untimed first steps.", flag_values=FLAGS)
flags.DEFINE_integer("windows", 5, "Windows the timed steps split into.",
                     flag_values=FLAGS)
flags.DEFINE_integer("repeats", 1, "Training (+ peer) measurements, "
                     "alternating; medians.", flag_values=FLAGS)
flags.DEFINE_integer("eval_steps", 0, "Eval batches (0: the whole split).",
                     flag_values=FLAGS)
flags.DEFINE_integer("eval_warmup", 2, "Untimed first eval batches.",
                     flag_values=FLAGS)
flags.DEFINE_integer("pipeline_steps", 0, "Batches timed for the pipeline "
                     "alone (0: 3 x --steps).", flag_values=FLAGS)
flags.DEFINE_string("pipeline_threads", "", "Comma-separated tf.data "
                    "thread-pool sizes to scan.", flag_values=FLAGS)
flags.DEFINE_integer("peak_trials", 3, "Trials of each peak probe.",
                     flag_values=FLAGS)
flags.DEFINE_integer("peak_reps", 10, "Calls per peak trial (a third of it "
                     "for the matmul).", flag_values=FLAGS)
flags.DEFINE_list("skip", [], f"Parts to leave out: {','.join(SKIPPABLE)}.",
                  flag_values=FLAGS)
flags.DEFINE_bool("vs_keras", False, "Run the Keras peer too.",
                  flag_values=FLAGS)
flags.DEFINE_string("keras_peer", "", "Path of the Keras peer script; "
                    "default: tools/bench/peer_keras.py.", flag_values=FLAGS)
flags.DEFINE_bool("vs_minimal", False, "Run the minimal Estimator peer too.",
                  flag_values=FLAGS)
flags.DEFINE_float("peer_timeout", 1800, "Seconds a peer may run.",
                   flag_values=FLAGS)
flags.DEFINE_string("model_dir", "", "Default: a temporary dir.",
                    flag_values=FLAGS)
flags.DEFINE_list("precisions", [], "Precisions to train side by side, "
                  "alternating; the first is the run's own.", flag_values=FLAGS)
flags.DEFINE_bool("verbose", False, "TensorFlow's INFO logs too.",
                  flag_values=FLAGS)
flags.register_validator(
    "skip", lambda parts: set(parts) <= set(SKIPPABLE),
    f"--skip: choose from {', '.join(SKIPPABLE)}", flag_values=FLAGS)
flags.register_validator(
    "precisions", lambda names: set(names) <= set(config_lib.PRECISIONS),
    f"--precisions: choose from {', '.join(config_lib.PRECISIONS)}",
    flag_values=FLAGS)


def parse_args(argv) -> types.SimpleNamespace:
  """The command line as plain values; paths expanded, --skip a set."""
  cli.parse(FLAGS, argv, __doc__)
  args = types.SimpleNamespace(**FLAGS.flag_values_dict())
  args.skip = set(args.skip)
  args.data_dir = paths.expand(args.data_dir)
  args.keras_peer = paths.expand(args.keras_peer)
  args.model_dir = paths.expand(args.model_dir)
  return args


def main(argv=None) -> dict:
  """Runs the benchmark; prints the JSON line and returns it as a dict."""
  args = parse_args(sys.argv[1:] if argv is None else argv)
  started = process_start()
  own_precision, *other_precisions = args.precisions or [None]
  cfg, forced = build_config(args.experiment, args.params_override,
                             args.data_dir, args.warmup + args.steps,
                             own_precision)
  import tensorflow as tf
  from estimator_cifar.engine import estimator_setup, precision
  from estimator_cifar.data.input_pipeline import make_input_fn
  tf.get_logger().setLevel("INFO" if args.verbose else "WARNING")
  cfg = precision.resolve(cfg)  # train.precision=auto: what a run would train in.
  m = Measurements(load_start=load_average())
  data_dir = args.data_dir
  model_dir = args.model_dir or tempfile.mkdtemp(prefix="benchmark_")
  batch, peak_dtype = cfg.train.batch_size, PEAK_DTYPES[cfg.train.precision]
  peers = build_peers(args, cfg, model_dir, m.notes)
  m.peer_runs = {name: [] for name in peers}
  m.peer_precisions = {name: peer.precision for name, peer in peers.items()}
  try:
    plan = estimator_setup.make_plan(cfg, data_dir)
    train_input = make_input_fn(cfg, plan.source, training=True)
    estimator = estimator_setup.make_estimator(cfg, model_dir, plan)
    others = {name: estimator_setup.make_estimator(
        precision.with_precision(cfg, name), os.path.join(model_dir, name), plan)
              for name in other_precisions}
    m.precision_runs = {name: [] for name in args.precisions}
    for repeat in range(args.repeats):
      timer = step_timer()
      estimator.train(train_input, steps=args.warmup + args.steps, hooks=[timer])
      if m.first_step is None:
        m.first_step = (timer.first_step_end - started, timer.first_step_cpu)
      m.train_runs.append((steady_rate(timer, batch, args.warmup, args.windows),
                           mean_rate(timer.wall, batch, args.warmup),
                           window_rates(timer.wall, batch, args.warmup,
                                        args.windows)))
      if own_precision:
        m.precision_runs[own_precision].append(m.train_runs[-1][0])
      for name, other in others.items():  # Right after, so runs alternate.
        timer = step_timer()
        other.train(train_input, steps=args.warmup + args.steps, hooks=[timer])
        m.precision_runs[name].append(
            steady_rate(timer, batch, args.warmup, args.windows))
      if repeat == 0:
        _measure_once(args, cfg, plan, estimator, train_input, m)
      for name, peer in peers.items():
        rate, note = peer.run(repeat, args.peer_timeout)
        m.peer_runs[name].append(rate)
        if note:
          m.notes.append(note)
    if "peak" not in args.skip:
      m.add_peak(measure_peak(peak_dtype, args.peak_trials, args.peak_reps,
                              matmul=False))
    m.info = machine_info()
  finally:
    if not args.model_dir:
      shutil.rmtree(model_dir, ignore_errors=True)
  result = bench_report.build(args, cfg, forced, m)
  result["targets"] = targets(result)
  print(json.dumps(result), flush=True)
  return result


def _measure_once(args, cfg, plan, estimator, train_input,
                  m: Measurements) -> None:
  """After the first training run: eval, pipeline, RSS, FLOPs, peak (1st half).

  Each unless --skip leaves it out. RSS is read here, before the peak probes'
  tensors and the later repeats, as the figure of one training run.
  """
  from estimator_cifar.data.input_pipeline import make_input_fn
  if "eval" not in args.skip:
    timer = step_timer()
    estimator.evaluate(make_input_fn(cfg, plan.source, training=False),
                       steps=args.eval_steps or None, hooks=[timer])
    m.eval_rate = steady_rate(timer, cfg.eval.batch_size, args.eval_warmup,
                              args.windows)
  if "pipeline" not in args.skip:
    batches = args.pipeline_steps or 3 * args.steps
    measure = lambda threads: measure_pipeline(
        cfg, train_input, cfg.train.batch_size, batches, args.warmup,
        args.windows, threads)
    m.pipeline_rate = measure(0)
    for n in [int(t) for t in args.pipeline_threads.split(",") if t]:
      m.by_threads[str(n)] = measure(n)
  m.rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
  if "flops" not in args.skip:
    m.flops = count_flops(cfg, plan.source.num_classes)
  if "peak" not in args.skip:
    m.add_peak(measure_peak(PEAK_DTYPES[cfg.train.precision], args.peak_trials,
                            args.peak_reps))


def targets(result: dict) -> dict:
  """Each speed goal in TARGETS: value (wall and CPU time), bound, met (None: not measured)."""

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


if __name__ == "__main__":
  try:
    main()
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
