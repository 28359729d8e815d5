"""Measures what TensorBoard summaries cost a training run, in steps/sec.

Trains ResNet-20 (batch 128, synthetic data, resnet_sgd) in one process,
alternating the configurations run by run so that whatever else the machine
does slows them alike:

  default  the experiment's summaries: scalars and images every
           summary.save_steps, histograms every summary.histogram_steps
  off      no summaries: summary.save_steps past the end, histograms and
           images off (the console hooks still run)
  bare     (--bare) off, and without this package's hooks (progress line,
           NaN guard, checkpoint guard): what those hooks cost

With --hook_overhead it first times the console hooks alone on a graph whose
step costs nearly nothing, which resolves their microseconds per step where
the training runs cannot.

Each run starts from a fresh model_dir, trains --warmup steps untimed, then
times --steps steps; --steps should be a multiple of summary.save_steps so the
timed window holds the same number of summary steps as a long run does. The
warm-up must pass one whole summary cycle (step 101 with the default 100):
Session.run builds an executor the first time it sees a set of fetches, a
one-time cost that a short window would count as if it recurred. Checkpoints
are only written outside the window. Prints the median steps/sec of each
configuration and the slowdown of `default` against `off`.

Usage (the figure in docs/performance.md):
  python -m tools.bench.summary_cost --repeats=3 --warmup=110 --steps=100 --bare
"""

import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.bench.summary_cost", file=sys.stderr)
  sys.exit(2)

import tensorflow as tf  # noqa: E402
from absl import flags, logging  # noqa: E402

from estimator_cifar import config as config_lib  # noqa: E402
from estimator_cifar.data.input_pipeline import make_input_fn  # noqa: E402
from estimator_cifar.engine import estimator_setup, hooks  # noqa: E402
from .. import cli  # noqa: E402

BASE = ["data.name=synthetic", "data.shuffle_buffer=1024", "model.depth=20",
        "train.batch_size=128", "checkpoint.save_secs=1000000"]
CONFIGS = {
    "default": [],
    "off": ["summary.save_steps=1000000000", "summary.histograms=false",
            "summary.images=false"],
}


class _WindowTimer(tf.compat.v1.train.SessionRunHook):
  """Times steps warmup+1 .. warmup+steps: wall clock and process CPU time."""

  def __init__(self, warmup: int, steps: int):
    self._warmup, self._steps = warmup, steps
    self.seconds = self.cpu_seconds = None

  def after_create_session(self, session, coord):
    self._done, self._start, self.step_seconds = 0, None, {}

  def before_run(self, run_context):
    self._step_start = time.perf_counter()

  def after_run(self, run_context, run_values):
    self._done += 1
    now = time.perf_counter()
    if self._done == self._warmup:
      self._start = (now, time.process_time())
    elif self._start and self._done <= self._warmup + self._steps:
      self.step_seconds[self._done] = now - self._step_start
      if self._done == self._warmup + self._steps:
        self.seconds = now - self._start[0]
        self.cpu_seconds = time.process_time() - self._start[1]


def measure(name: str, overrides: list[str], warmup: int, steps: int,
            with_hooks: bool, experiment: str = "resnet_sgd"
            ) -> tuple[float, float, float]:
  """One fresh training run, figures over the timed window.

  Returns:
    (steps/sec, CPU seconds per step, seconds of the summary steps beyond the
    median step). CPU time (all of this process's threads) is steadier than
    the wall clock on a shared machine; the summary steps' extra time is the
    most direct figure of all (steps 1, 1 + save_steps, ... are the ones where
    Estimator's SummarySaverHook and the histogram hook fetch).
  """
  cfg = config_lib.resolve(experiment, [",".join(BASE + overrides)])
  plan = estimator_setup.make_plan(cfg, None)
  with tempfile.TemporaryDirectory() as model_dir:
    estimator = estimator_setup.make_estimator(cfg, model_dir, plan)
    timer = _WindowTimer(warmup, steps)
    run_hooks = [timer]
    listeners = []
    if with_hooks:
      run_hooks += hooks.train_hooks(cfg, model_dir, plan.max_steps)
      listeners = hooks.saving_listeners(cfg, model_dir)
    estimator.train(make_input_fn(cfg, plan.source, training=True),
                    steps=warmup + steps, hooks=run_hooks,
                    saving_listeners=listeners)
  rate, cpu = steps / timer.seconds, timer.cpu_seconds / steps
  median = statistics.median(timer.step_seconds.values())
  every = cfg.summary.save_steps
  extra = sum(sec - median for step, sec in timer.step_seconds.items()
              if (step - 1) % every == 0)
  slowest = sorted(timer.step_seconds, key=timer.step_seconds.get)[-2:][::-1]
  print(f"  {name:8s} {rate:7.3f} steps/sec {cpu:7.3f} CPU sec/step; median "
        f"step {median:.3f}s, summary steps +{extra:.2f}s; slowest steps: "
        + ", ".join(f"{s} ({timer.step_seconds[s]:.2f}s)" for s in slowest),
        flush=True)
  return rate, cpu, extra / (steps * median)


def hook_overhead(steps: int = 5000) -> dict[str, float]:
  """Microseconds per step that each console hook adds to a trivial step.

  ProgressHook's due steps (one in 100) hardly move the median: its figure is
  that of the other 99 steps, where it fetches nothing.
  """
  from estimator_cifar.model import summaries  # pylint: disable=import-outside-toplevel
  variants = {
      "no hooks": lambda: [],
      "NanGuardHook": lambda: [hooks.NanGuardHook("")],
      "ProgressHook": lambda: [hooks.ProgressHook(10 ** 9, 128, 100)],
      "both": lambda: [hooks.NanGuardHook(""),
                       hooks.ProgressHook(10 ** 9, 128, 100)],
  }
  best = {}
  for _ in range(3):  # Alternate the variants; keep each one's best.
    for name, make in variants.items():
      with tf.Graph().as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        train_op = step.assign_add(1)
        tf.compat.v1.add_to_collection(summaries.LOSS_COLLECTION,
                                       tf.cast(step, tf.float32))
        tf.compat.v1.add_to_collection(summaries.LEARNING_RATE_COLLECTION,
                                       tf.constant(0.1))
        with tf.compat.v1.train.MonitoredSession(hooks=make()) as sess:
          for _ in range(100):
            sess.run(train_op)
          times = []
          for _ in range(steps):
            start = time.perf_counter()
            sess.run(train_op)
            times.append(time.perf_counter() - start)
          # The median step: preemptions by other processes are outliers.
          micros = 1e6 * statistics.median(times)
      best[name] = min(best.get(name, micros), micros)
  return {name: best[name] - best["no hooks"] for name in variants
          if name != "no hooks"} | {"no hooks (absolute)": best["no hooks"]}


FLAGS = flags.FlagValues()
flags.DEFINE_string("experiment", "resnet_sgd", "Experiment to train, with "
                    "ResNet-20 on synthetic data forced on top.",
                    flag_values=FLAGS)
flags.DEFINE_integer("repeats", 3, "Runs of each configuration.",
                     flag_values=FLAGS)
flags.DEFINE_integer("warmup", 110, "Untimed steps first.", flag_values=FLAGS)
flags.DEFINE_integer("steps", 100, "Timed steps.", flag_values=FLAGS)
flags.DEFINE_bool("bare", False, "Also measure without this package's hooks.",
                  flag_values=FLAGS)
flags.DEFINE_bool("hook_overhead", False, "First time the console hooks on a "
                  "trivial graph.", flag_values=FLAGS)
flags.DEFINE_multi_string("params_override", [], "Extra a.b=v overrides for "
                          "every configuration.", flag_values=FLAGS)


def main(argv=None) -> int:
  cli.parse(FLAGS, sys.argv[1:] if argv is None else argv, __doc__)
  args = FLAGS
  logging.set_verbosity(logging.WARNING)
  tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.WARN)
  if args.hook_overhead:
    for name, micros in hook_overhead().items():
      print(f"hook overhead: {name:20s} {micros:+7.1f} us/step", flush=True)
    if args.repeats == 0:
      return 0
  configs = {k: v + list(args.params_override) for k, v in CONFIGS.items()}
  if args.bare:
    configs["bare"] = configs["off"]
  rates = {name: [] for name in configs}
  cpus = {name: [] for name in configs}
  extras = []
  for repeat in range(args.repeats):
    print(f"repeat {repeat + 1}/{args.repeats}", flush=True)
    for name, overrides in configs.items():
      rate, cpu, extra = measure(name, overrides, args.warmup, args.steps,
                                 with_hooks=name != "bare",
                                 experiment=args.experiment)
      rates[name].append(rate)
      cpus[name].append(cpu)
      if name == "default":
        extras.append(extra)
  rate = {name: statistics.median(r) for name, r in rates.items()}
  cpu = {name: statistics.median(c) for name, c in cpus.items()}
  for name in configs:
    print(f"median {name:8s} {rate[name]:7.3f} steps/sec "
          f"({rate[name] * 128:.0f} examples/sec), {cpu[name]:.3f} CPU sec/step, "
          f"over {args.repeats} runs")
  for slow, fast, what in (("default", "off", "summaries"),
                           ("off", "bare", "hooks")):
    if slow in rate and fast in rate:
      print(f"{what} cost: {slow} vs {fast}: "
            f"{100 * (1 - rate[slow] / rate[fast]):+.1f}% steps/sec, "
            f"{100 * (cpu[slow] / cpu[fast] - 1):+.1f}% CPU time per step")
  print(f"summary steps of default: +{100 * statistics.median(extras):.1f}% of "
        "the window's time beyond median steps")
  return 0


if __name__ == "__main__":
  sys.exit(main())
