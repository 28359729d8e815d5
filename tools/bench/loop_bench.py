r"""Training images/sec at several train.steps_per_loop values, side by side.

  python -m tools.bench.loop_bench --experiment=resnet_sgd \
      --params_override=model.name=tiny --loops=1,20 --steps=400 --repeats=3

Every measurement runs the package's own training path (the Estimator from
`estimator_setup.make_estimator`, the train input_fn stacked by
`train_loop.stack_batches`, the hooks of `hooks.train_hooks`): every feature
the experiment has on (EMA, summaries and histograms at their cadence,
progress lines, the NaN guard) stays on. Data is synthetic unless --data
names a data_dir. The loop values alternate within each repeat, so that a
neighbour's load on a shared machine falls on all of them alike; each
figure is the median over the repeats, and `ratios` are medians of the
per-repeat ratios to the first --loops value (measured side by side).

A timer hook reads the clocks after every session.run; the first --warmup
steps (at least two runs of the largest loop value) and the last run are not
timed. Rates are given per second of wall clock and per
CPU-second of this process (all threads). Prints ONE JSON line.
"""

import json
import math
import statistics
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("experiment", "resnet_sgd", "Experiment name or path.")
flags.DEFINE_string("params_override", "", "Overrides, as run.py takes them.")
flags.DEFINE_string("data", "synthetic", "'synthetic' or a data_dir.")
flags.DEFINE_list("loops", ["1", "20"], "train.steps_per_loop values.")
flags.DEFINE_integer("steps", 400, "Timed training steps per measurement.")
flags.DEFINE_integer("warmup", 100, "Untimed first steps per measurement.")
flags.DEFINE_integer("repeats", 3, "Measurements per loop value (alternating).")

# No checkpoint inside the timed steps (Estimator still saves at the start
# and the end, outside the timing).
CHECKPOINT_SECS = 86400


def measure(experiment: str, overrides: str, data: str, loop: int,
            steps: int, warmup: int) -> dict:
  """One training measurement at train.steps_per_loop=`loop`."""
  import tensorflow as tf
  from estimator_cifar import config as config_lib
  from estimator_cifar.data.input_pipeline import make_input_fn
  from estimator_cifar.engine import estimator_setup, hooks
  from estimator_cifar.model import train_loop

  # One more loop after the timed steps: the last run of a training is due
  # for the progress line, a set of fetches whose first run builds another
  # executor, which must not fall into the timing.
  total = warmup + steps + loop
  front = ["data.name=synthetic"] if data == "synthetic" else []
  forced = [f"train.steps={total}", f"train.steps_per_loop={loop}",
            f"checkpoint.save_secs={CHECKPOINT_SECS}", "checkpoint.save_steps=0"]
  cfg = config_lib.resolve(experiment, [",".join(
      front + ([overrides] if overrides else []) + forced)])

  class Timer(tf.estimator.SessionRunHook):
    def __init__(self):
      self.marks = []  # (wall, cpu) after each run.

    def after_run(self, run_context, run_values):
      self.marks.append((time.perf_counter(), time.process_time()))

  with tempfile.TemporaryDirectory() as model_dir:
    plan = estimator_setup.make_plan(cfg, None if data == "synthetic" else data)
    estimator = estimator_setup.make_estimator(cfg, model_dir, plan)
    timer = Timer()
    train_hooks = hooks.train_hooks(cfg, model_dir, plan.max_steps) + [timer]
    estimator.train(train_loop.stack_batches(
        make_input_fn(cfg, plan.source, training=True), loop),
                    max_steps=plan.max_steps, hooks=train_hooks,
                    saving_listeners=hooks.saving_listeners(cfg, model_dir))
  first = warmup // loop - 1  # The run that ended the warm-up.
  runs = steps // loop
  (wall0, cpu0), (wall1, cpu1) = timer.marks[first], timer.marks[first + runs]
  images = runs * loop * cfg.train.batch_size
  return {"images_per_sec": images / (wall1 - wall0),
          "images_per_cpu_sec": images / (cpu1 - cpu0)}


def run(experiment: str, overrides: str, data: str, loops: list[int],
        steps: int, warmup: int, repeats: int) -> dict:
  """Alternating measurements; medians and side-by-side ratios."""
  # Every loop value must divide the warm-up and the timed steps, and the
  # warm-up must span two runs of the largest: the first runs with each set
  # of fetches (hooks due, not due) build the session's executors.
  unit = math.lcm(*loops)
  steps = _round_up(steps, unit)
  warmup = _round_up(max(warmup, 2 * max(loops)), unit)
  rows = {k: [] for k in loops}
  for _ in range(repeats):
    for k in loops:
      rows[k].append(measure(experiment, overrides, data, k, steps, warmup))
  base = loops[0]
  result = {"experiment": experiment, "params_override": overrides,
            "data": data, "steps": steps, "warmup": warmup,
            "repeats": repeats, "loops": {}, "ratios": {}}
  for k in loops:
    result["loops"][str(k)] = {
        key: statistics.median(r[key] for r in rows[k])
        for key in ("images_per_sec", "images_per_cpu_sec")}
    result["loops"][str(k)]["runs"] = rows[k]
    if k != base:
      result["ratios"][f"{k}_vs_{base}"] = {
          key: statistics.median(a[key] / b[key]
                                 for a, b in zip(rows[k], rows[base]))
          for key in ("images_per_sec", "images_per_cpu_sec")}
  return result


def _round_up(value: int, unit: int) -> int:
  return max(unit, -(-value // unit) * unit)


def main(argv):
  del argv
  result = run(FLAGS.experiment, FLAGS.params_override, FLAGS.data,
               [int(k) for k in FLAGS.loops], FLAGS.steps, FLAGS.warmup,
               FLAGS.repeats)
  print(json.dumps(result), flush=True)


if __name__ == "__main__":
  app.run(main)
