"""Measures training throughput of any run: examples/sec and per CPU-second.

Usage (everything after `--` is the command to measure):
  python -m tools.bench.measure_throughput --batch_size=128 -- \\
      python -m tools.launch_local_cluster --workers=1 --ps=1 --no-evaluator -- \\
      --experiment=resnet_sgd --model_dir=/tmp/tp \\
      --params_override=data.name=synthetic,train.steps=70,log.every_steps=10,distribute.strategy=parameter_server

It reads the Estimator's `loss = ..., step = N` log lines of the single
process or, under the cluster launcher, of `[chief:0]`, and between the first
line at step >= --skip_steps and the last one reports, as one JSON line:
global steps, wall seconds, examples/sec (batch x steps / wall), the CPU time
(user + system) of the whole process tree over the same interval, the cores
that amounts to, and examples per CPU-second. Start-up (imports, graph
building, session creation) is outside the interval.

Examples per CPU-second is the fair figure on a shared machine: a run of
several processes gets a larger share of a busy CPU than one process does, so
its wall-clock rate flatters it; the cost of one example does not change.
"""

import json
import os
import re
import subprocess
import sys
import time

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.bench.measure_throughput", file=sys.stderr)
  sys.exit(2)

from absl import flags

from estimator_cifar import extras
from .. import cli

psutil = extras.require_or_exit("psutil", "python -m tools.bench.measure_throughput")

FLAGS = flags.FlagValues()
flags.DEFINE_integer("batch_size", None, "Global batch (train.batch_size) of "
                     "the run.", flag_values=FLAGS, required=True)
flags.DEFINE_integer("skip_steps", 10, "Start measuring at the first step "
                     "line >= this.", flag_values=FLAGS)

STEP_LINE = re.compile(r"^(\[(?P<task>\w+:\d+)\] )?.*loss = [-+\d.eE]+, step = "
                       r"(?P<step>\d+)")


def tree_cpu_seconds(root: psutil.Process) -> float:
  """User + system seconds of `root` and every live descendant."""
  total = 0.0
  for proc in [root] + root.children(recursive=True):
    try:
      times = proc.cpu_times()
      total += times.user + times.system
    except psutil.Error:  # Exited between listing and reading.
      continue
  return total


def main(argv: list[str] | None = None) -> int:
  """Runs the command, prints its output and then the JSON summary line."""
  argv = sys.argv[1:] if argv is None else argv
  if "--" not in argv:
    cli.parse(FLAGS, argv, __doc__)  # Answers --help and flag errors first.
    print("error: pass the command to measure after `--`.", file=sys.stderr)
    return 2
  cut = argv.index("--")
  cli.parse(FLAGS, argv[:cut], __doc__)
  proc = subprocess.Popen(argv[cut + 1:], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  root = psutil.Process(proc.pid)
  marks = []
  for line in proc.stdout:
    sys.stdout.write(line)
    match = STEP_LINE.match(line)
    if match and match.group("task") in (None, "chief:0") and \
        int(match.group("step")) >= FLAGS.skip_steps:
      marks.append((int(match.group("step")), time.time(),
                    tree_cpu_seconds(root), os.getloadavg()[0]))
  code = proc.wait()
  if len(marks) < 2:
    print("error: fewer than two step lines after --skip_steps; train longer "
          "or log more often (log.every_steps).", file=sys.stderr)
    return code or 1
  (step0, t0, cpu0, load0), (step1, t1, cpu1, load1) = marks[0], marks[-1]
  steps, wall, cpu = step1 - step0, t1 - t0, cpu1 - cpu0

  def ratio(num, den, digits=1):  # None where nothing was measured.
    return round(num / den, digits) if den > 0 else None

  print(json.dumps({
      "steps": steps, "wall_secs": round(wall, 2),
      "examples_per_sec": ratio(FLAGS.batch_size * steps, wall),
      "cpu_secs": round(cpu, 2), "cores_used": ratio(cpu, wall, 2),
      "examples_per_cpu_sec": ratio(FLAGS.batch_size * steps, cpu),
      "load_average": [round(load0, 2), round(load1, 2)], "exit": code}))
  return code


if __name__ == "__main__":
  sys.exit(main())
