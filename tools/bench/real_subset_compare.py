r"""The package's recipe beside the minimal Estimator and Keras, same budget.

Usage (from the repository root):

  python -m tools.bench.real_subset_compare \
      --data_dir=/path/to/cifar10_real_subset --budget_secs=600 \
      [--experiment=real_subset] [--params_override=a.b=v,...] \
      [--points=6] [--contenders=package --contenders=keras] [--work_dir=DIR]

Each contender (tools/bench/compare_contenders.py) trains in its own process, one
after another, on the same data for the same wall-clock budget, saving a
checkpoint every budget / points seconds; every checkpoint is then scored on
the test split (outside the clock). Printed: each contender's accuracy at
each mark of elapsed training time, and for each peer the time the package
and the peer took to first reach the peer's best accuracy. The last line is
one JSON object with the curves and these comparisons.
"""

import json
import os
import subprocess
import sys
import tempfile

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.bench.real_subset_compare", file=sys.stderr)
  sys.exit(2)

from absl import flags

from estimator_cifar import paths
from .. import cli

PACKAGE = "package"
CONTENDERS = ("package", "minimal", "keras")  # compare_contenders.CONTENDERS.
CHILD_TIMEOUT_FACTOR = 6   # A child may take this many budgets (probe, evals).
CHILD_TIMEOUT_EXTRA = 600  # Plus start-up on a loaded machine.

FLAGS = flags.FlagValues()
flags.DEFINE_string("data_dir", None, "data_dir holding cifar-10-batches-bin/.",
                    flag_values=FLAGS, required=True)
flags.DEFINE_float("budget_secs", 600.0, "Training wall-clock budget of each "
                   "contender, in seconds.", flag_values=FLAGS)
flags.DEFINE_string("experiment", "real_subset", "The package's recipe.",
                    flag_values=FLAGS)
flags.DEFINE_multi_string("params_override", [], "Overrides of the package's "
                          "recipe, a.b=v,c.d=w (repeatable).",
                          flag_values=FLAGS)
flags.DEFINE_integer("points", 6, "Checkpoints (accuracy marks) per budget.",
                     flag_values=FLAGS)
flags.DEFINE_multi_enum("contenders", list(CONTENDERS), CONTENDERS,
                        "Which contenders to run, in this order.",
                        flag_values=FLAGS)
flags.DEFINE_string("work_dir", None, "Where the runs go; default a new "
                    "temporary directory (kept, and printed).",
                    flag_values=FLAGS)


def accuracy_at(points: list, seconds: float) -> float | None:
  """Accuracy of the newest checkpoint saved at or before `seconds`."""
  reached = [acc for t, _, acc in points if t <= seconds]
  return reached[-1] if reached else None


def time_to(points: list, target: float) -> float | None:
  """Seconds until a checkpoint first reached `target` accuracy, or None."""
  for t, _, acc in points:
    if acc >= target:
      return t
  return None


def compare(curves: dict[str, list], budget: float, marks: int) -> dict:
  """Accuracy at equal times, and time to each peer's best accuracy.

  Args:
    curves: contender -> [[seconds, step, accuracy], ...] in time order.
    budget: the training budget in seconds.
    marks: how many equal times to report (budget / marks apart).
  """
  times = [round(budget * (k + 1) / marks, 3) for k in range(marks)]
  final = {name: (points[-1][2] if points else None)
           for name, points in curves.items()}
  at_time = {name: [accuracy_at(points, t) for t in times]
             for name, points in curves.items()}
  # The last mark also counts the final checkpoint, saved just past the budget.
  for name in curves:
    at_time[name][-1] = final[name]
  out = {"budget_secs": budget, "times": times, "accuracy_at_time": at_time,
         "final_accuracy": final, "time_to_peer_best": {}}
  package = curves.get(PACKAGE)
  for name, points in curves.items():
    if name == PACKAGE or not points or package is None:
      continue
    target = max(acc for _, _, acc in points)
    mine, theirs = time_to(package, target), time_to(points, target)
    out["time_to_peer_best"][name] = {
        "target": target, "package_secs": mine, "peer_secs": theirs,
        "package_faster": (mine is not None and theirs is not None and
                           mine < theirs)}
  if package is not None:
    peers = [final[n] for n in curves if n != PACKAGE and final[n] is not None]
    out["package_highest_at_budget"] = bool(
        peers and final[PACKAGE] is not None and final[PACKAGE] > max(peers))
  return out


def format_report(report: dict, curves: dict) -> str:
  """The comparison as plain-text tables."""
  names = list(curves)
  lines = ["accuracy at elapsed training time (s):",
           "  " + "time".rjust(8) + "".join(n.rjust(10) for n in names)]
  for i, t in enumerate(report["times"]):
    row = [report["accuracy_at_time"][n][i] for n in names]
    lines.append("  " + f"{t:8.0f}" + "".join(
        ("-" if a is None else f"{a:.4f}").rjust(10) for a in row))
  for name in names:
    points = curves[name]
    if points:
      lines.append(f"  {name}: {len(points)} checkpoints, last at "
                   f"{points[-1][0]:.0f}s step {points[-1][1]}")
  for name, row in report["time_to_peer_best"].items():
    fmt = lambda s: "not reached" if s is None else f"{s:.0f}s"
    lines.append(f"time to {name}'s best accuracy {row['target']:.4f}: "
                 f"package {fmt(row['package_secs'])}, {name} "
                 f"{fmt(row['peer_secs'])}")
  return "\n".join(lines)


def run_contender(spec: dict) -> dict:
  """Runs one contender in a child process; its result dict (see the module)."""
  spec = dict(spec, out=os.path.join(spec["work_dir"],
                                     f"{spec['contender']}.json"))
  env = cli.child_env(TF_CPP_MIN_LOG_LEVEL="2")
  timeout = CHILD_TIMEOUT_FACTOR * spec["budget_secs"] + CHILD_TIMEOUT_EXTRA
  log = os.path.join(spec["work_dir"], f"{spec['contender']}.log")
  with open(log, "w") as f:
    proc = subprocess.run(
        [sys.executable, "-m", f"{__package__}.compare_contenders", json.dumps(spec)],
        cwd=cli.CODE_ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
        timeout=timeout)
  if proc.returncode != 0 or not os.path.isfile(spec["out"]):
    with open(log) as f:
      tail = " | ".join(f.read().strip().splitlines()[-3:])
    return {"name": spec["contender"], "points": [],
            "notes": [f"{spec['contender']} failed (exit {proc.returncode}, "
                      f"log {log}): {tail}"]}
  with open(spec["out"]) as f:
    return json.load(f)


def network_note(experiment: str, overrides: list[str]) -> str | None:
  """A note when the recipe's network is not the peers' ResNet-20 v1."""
  from estimator_cifar import config as config_lib
  m = config_lib.resolve(experiment, overrides).model
  if (m.name, m.depth, m.version) == ("resnet", 20, 1):
    return None
  return (f"the peers run ResNet-20 v1, the package model.name={m.name} "
          f"depth={m.depth} version={m.version}")


def main(argv: list[str] | None = None) -> int:
  cli.parse(FLAGS, sys.argv[1:] if argv is None else argv, __doc__)
  work_dir = paths.expand(FLAGS.work_dir) if FLAGS.work_dir else \
      tempfile.mkdtemp(prefix="real_subset_compare_")
  os.makedirs(work_dir, exist_ok=True)
  note = network_note(FLAGS.experiment, FLAGS.params_override)
  notes = [note] if note else []
  spec = {"data_dir": os.path.abspath(paths.expand(FLAGS.data_dir)),
          "work_dir": work_dir, "budget_secs": FLAGS.budget_secs,
          "points": FLAGS.points, "experiment": FLAGS.experiment,
          "overrides": list(FLAGS.params_override)}
  curves = {}
  for name in FLAGS.contenders:
    result = run_contender(dict(spec, contender=name))
    curves[name] = result["points"]
    notes += result.get("notes", [])
  report = compare(curves, FLAGS.budget_secs, FLAGS.points)
  report.update(curves=curves, notes=notes, work_dir=work_dir)
  print(format_report(report, curves))
  for line in notes:
    print("note:", line)
  print(json.dumps(report), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
