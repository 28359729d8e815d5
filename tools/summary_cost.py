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

Each run starts from a fresh model_dir, trains --warmup steps untimed, then
times --steps steps; --steps should be a multiple of summary.save_steps so the
timed window holds the same number of summary steps as a long run does. The
warm-up must pass one whole summary cycle (step 101 with the default 100):
Session.run builds an executor the first time it sees a set of fetches (3 s
for ResNet-20 on 2 CPU cores), a one-time cost that a short window would
count as if it recurred. Checkpoints are only written outside the window. Prints the median steps/sec
of each configuration and the slowdown of `default` against `off`.

Usage (the README's figure):
  python tools/summary_cost.py --repeats=3 --warmup=110 --steps=100 --bare
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

from estimator_cifar import config as config_lib  # noqa: E402
from estimator_cifar import hooks, train_lib  # noqa: E402
from estimator_cifar.datasets.input_pipeline import make_input_fn  # noqa: E402

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
    self._done, self._start, self.slowest = 0, None, []

  def before_run(self, run_context):
    self._step_start = time.perf_counter()

  def after_run(self, run_context, run_values):
    self._done += 1
    now = time.perf_counter()
    if self._done == self._warmup:
      self._start = (now, time.process_time())
    elif self._start and self._done <= self._warmup + self._steps:
      self.slowest = sorted(self.slowest + [(now - self._step_start,
                                             self._done)])[-2:]
      if self._done == self._warmup + self._steps:
        self.seconds = now - self._start[0]
        self.cpu_seconds = time.process_time() - self._start[1]


def measure(name: str, overrides: list[str], warmup: int, steps: int,
            with_hooks: bool) -> tuple[float, float]:
  """One fresh training run: (steps/sec, CPU seconds per step) in the window.

  CPU time (all of this process's threads) is the steadier figure on a
  shared machine: other processes slow the wall clock, not our CPU seconds.
  """
  cfg = config_lib.resolve("resnet_sgd", [",".join(BASE + overrides)])
  plan = train_lib.make_plan(cfg, None)
  with tempfile.TemporaryDirectory() as model_dir:
    estimator = train_lib.make_estimator(cfg, model_dir, plan)
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
  slow = ", ".join(f"step {step} {sec:.2f}s" for sec, step in timer.slowest[::-1])
  print(f"  {name:8s} {rate:7.3f} steps/sec {cpu:7.3f} CPU sec/step "
        f"(slowest: {slow})", flush=True)
  return rate, cpu


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=110)
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--bare", action="store_true",
                      help="also measure without this package's hooks")
  parser.add_argument("--override", action="append", default=[],
                      help="extra a.b=v overrides for every configuration")
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.WARNING)
  tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.WARN)
  configs = {k: v + args.override for k, v in CONFIGS.items()}
  if args.bare:
    configs["bare"] = configs["off"]
  rates = {name: [] for name in configs}
  cpus = {name: [] for name in configs}
  for repeat in range(args.repeats):
    print(f"repeat {repeat + 1}/{args.repeats}", flush=True)
    for name, overrides in configs.items():
      rate, cpu = measure(name, overrides, args.warmup, args.steps,
                          with_hooks=name != "bare")
      rates[name].append(rate)
      cpus[name].append(cpu)
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
  return 0


if __name__ == "__main__":
  sys.exit(main())
