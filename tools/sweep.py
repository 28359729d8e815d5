r"""Runs a grid of config overrides of one experiment, one model_dir per point.

Usage (from the repository root):

  python -m tools.sweep --experiment=resnet_sgd --root=runs/sweep1 \
      --grid optimizer.learning_rate=0.05,0.1,0.2 \
      --grid train.weight_decay=1e-4,5e-4 --parallel 2 \
      [--params_override=train.epochs=30] [--data_dir DIR] [--dry_run] \
      [--report_only]

The points are the cross product of the `--grid` values (the first grid varies
slowest). Each point trains in `<root>/<name>`, where the name lists its
overrides with canonical values, e.g.
`optimizer.learning_rate=0.05__train.weight_decay=0.0001`, so `1e-4` and
`0.0001` are the same point and the name of a point never changes.
`--params_override` applies to every point (the grid values come after it).

Each point runs as its own process, `python -m estimator_cifar.run
--experiment=... --model_dir=<root>/<name> --params_override=...`, so that one
crash cannot take the sweep down; its output goes to `<model_dir>/sweep.log`.
At most `--parallel` points run at once.

Rerunning the same command skips the points whose `run_info.json` says
"finished" with the same config (and, with `train.steps`, the final step
reached), and runs the others again with the same command: the Estimator
resumes from their newest checkpoint. A failed point is reported with its error
line and the sweep goes on; the exit status is 1 if any point failed.

At the end (or alone with `--report_only`) it writes `results.md`,
`results.csv` (tools.results_table, with a column per grid key) and
`curves.png` (tools.plot_curves) into the root, and `sweep.json` with the
grid and each point's outcome. Seeds are a grid key like any other
(`--grid train.seed=1,2,3`); with several, results.md also summarises each
point over its seeds: median, mean and standard deviation of the best
accuracy it chose on and, for runs with a validation split, of the test
accuracy and ECE scored once at the end.

A grid of more than `--max_points` points (default DEFAULT_MAX_POINTS) is
refused before anything runs: raise the flag to run it on purpose.
"""

import dataclasses
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Optional, Sequence

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.sweep", file=sys.stderr)
  sys.exit(2)

from absl import app, flags

from estimator_cifar import config as config_lib
from estimator_cifar import overrides, paths, rundir
from estimator_cifar.errors import ConfigError
from . import cli
from .sweep_grid import (MAX_NAME_CHARS, Point,  # noqa: F401
                              SweepError, make_points, parse_grid,
                              point_config, point_name, point_state)
from .sweep_report import (CURVES_PNG, RESULTS_CSV, RESULTS_MD,  # noqa: F401
                           write_report)

LOG_FILE = rundir.SWEEP_LOG_FILE
STATE_FILE = "sweep.json"
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 10.0
LOG_HEADER = "==== sweep "  # Starts the line before each attempt in sweep.log.
# More points than this need --max_points: a typo in a grid can ask for days.
DEFAULT_MAX_POINTS = 64

# Point outcomes in sweep.json and the summary.
FINISHED = "finished"    # Ran in this invocation and exited 0.
SKIPPED = "skipped"      # Already finished earlier with the same config.
FAILED = "failed"        # Exited non-zero; `error` holds its error line.
NOT_RUN = "not_run"      # The sweep was stopped before this point ended.


@dataclasses.dataclass
class Outcome:
  """How one point ended in this invocation."""
  status: str
  error: Optional[str] = None
  seconds: Optional[float] = None
  returncode: Optional[int] = None


def error_line(log_path: str, offset: int = 0) -> Optional[str]:
  """The line that says why a run failed, from its log after `offset`.

  run.py prints user errors as one `error: ...` line; anything else ends with a
  traceback whose last line names the exception. Returns None for an empty log.
  """
  try:
    with open(log_path, "rb") as f:
      f.seek(offset)
      text = f.read().decode(errors="replace")
  except OSError:
    return None
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  for line in reversed(lines):
    if line.startswith("error: "):
      return line
  return lines[-1] if lines else None


# --------------------------------------------------------------- running them

def point_command(experiment: str, common: Sequence[str], point: Point,
                  data_dir: Optional[str]) -> list[str]:
  """The command that trains (or resumes) one point."""
  cmd = [sys.executable, "-m", "estimator_cifar.run",
         f"--experiment={experiment}", f"--model_dir={point.model_dir}"]
  overrides = list(common) + list(point.overrides)
  cmd += [f"--params_override={o}" for o in overrides]
  if data_dir:
    cmd.append(f"--data_dir={data_dir}")
  return cmd


class _Stop(Exception):
  """SIGTERM reached the sweep: stop the points, keep what they wrote."""


def _raise_stop(signum, frame):
  del signum, frame
  raise _Stop()


def run_points(jobs: Sequence[tuple[Point, list[str]]], parallel: int,
               say: Callable[[str], None] = print) -> dict[str, Outcome]:
  """Runs each point's command, at most `parallel` at a time.

  Each process writes to `<model_dir>/sweep.log` (appended; a header line
  starts each attempt). If the sweep itself is stopped (Ctrl-C, SIGTERM), the
  running points are stopped too and left as they are, to be resumed by the
  next sweep.

  Args:
    jobs: (point, command) pairs, started in order.
    parallel: the most processes at once (>= 1).
    say: where progress lines go.

  Returns:
    Outcome by point name; points not run to the end are NOT_RUN.
  """
  outcomes = {point.name: Outcome(NOT_RUN) for point, _ in jobs}
  pending = list(jobs)
  running = {}  # Popen -> (point, log offset, start time)
  total = len(jobs)
  done = 0
  try:
    while pending or running:
      while pending and len(running) < parallel:
        point, cmd = pending.pop(0)
        os.makedirs(point.model_dir, exist_ok=True)
        log_path = os.path.join(point.model_dir, LOG_FILE)
        with open(log_path, "ab") as log:
          offset = log.tell()
          stamp = datetime.datetime.now().astimezone().isoformat(
              timespec="seconds")
          log.write(f"{LOG_HEADER}{stamp}: {shlex.join(cmd)}\n".encode())
          log.flush()
          process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=cli.child_env())
        running[process] = (point, offset, time.monotonic())
        say(f"start    {point.name}")
      time.sleep(POLL_SECONDS)
      for process in [p for p in running if p.poll() is not None]:
        point, offset, started = running.pop(process)
        seconds = time.monotonic() - started
        done += 1
        code = process.returncode
        if code == 0:
          outcomes[point.name] = Outcome(FINISHED, None, seconds, code)
          say(f"done     {point.name} [{done}/{total}] in {seconds:.1f}s")
          continue
        log_path = os.path.join(point.model_dir, LOG_FILE)
        line = error_line(log_path, offset) or "(no output)"
        if code < 0:
          line = f"killed by signal {-code}; last line: {line}"
        outcomes[point.name] = Outcome(FAILED, line, seconds, code)
        say(f"FAILED   {point.name} [{done}/{total}] exit {code}: {line}")
  finally:
    _stop_all(list(running))
  return outcomes


def _stop_all(processes: list[subprocess.Popen]) -> None:
  """SIGTERM, then after a grace period SIGKILL, each still-running process."""
  for process in processes:
    if process.poll() is None:
      process.terminate()
  deadline = time.monotonic() + STOP_GRACE_SECONDS
  for process in processes:
    try:
      process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


# ------------------------------------------------------------------- reports

def _write_state(root: str, state: dict[str, Any]) -> None:
  """sweep.json, atomically: the grid, the command and each point's outcome."""
  os.makedirs(root, exist_ok=True)
  tmp = os.path.join(root, STATE_FILE + ".tmp")
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(state, f, indent=2)
    f.write("\n")
  os.replace(tmp, os.path.join(root, STATE_FILE))


def _on_record(root: str) -> tuple[dict[str, str], list[str]]:
  """(failed point -> error line, grid keys) of the last sweep in `root`."""
  try:
    with open(os.path.join(root, STATE_FILE), encoding="utf-8") as f:
      state = json.load(f)
    points, grid = state.get("points", []), state.get("grid", [])
  except (OSError, ValueError, AttributeError):
    return {}, []
  failures = {p["name"]: p.get("error") or "" for p in points
              if isinstance(p, dict) and p.get("status") == FAILED}
  return failures, [g[0] for g in grid if isinstance(g, list) and g]


# ---------------------------------------------------------------------- main

def sweep(experiment: str, grid_specs: Sequence[str], root: str,
          common: Sequence[str] = (), parallel: int = 1,
          data_dir: Optional[str] = None, dry_run: bool = False,
          say: Callable[[str], None] = print,
          max_points: int = DEFAULT_MAX_POINTS) -> int:
  """Runs (or lists) a sweep; returns the exit status: 0, or 1 if any failed.

  Raises:
    SweepError: a bad --grid/--params_override, an unknown experiment, or
      more points than `max_points`.
  """
  try:
    base = config_lib.load_experiment(experiment)
    config_lib.apply_overrides(base, list(common))
  except ConfigError as e:
    raise SweepError(str(e)) from None
  grid = parse_grid(grid_specs, base)
  common_keys = {k for k, _ in overrides.split_overrides(list(common))}
  both = common_keys & {k for k, _ in grid}
  if both:
    raise SweepError(f"{', '.join(sorted(both))} is both in --params_override "
                     "and --grid")
  points = make_points(grid, root)
  if len(points) > max_points:
    raise SweepError(
        f"the grid has {len(points)} points, more than --max_points="
        f"{max_points}: pass --max_points={len(points)} to run them all, or "
        "give --grid fewer values")
  jobs, skipped = [], []
  say(f"{len(points)} point{'s' if len(points) != 1 else ''} under {root}")
  for point in points:
    try:
      cfg, invalid = point_config(experiment, common, point), None
    except ConfigError as e:
      cfg, invalid = None, str(e)
    state, detail = point_state(point, cfg)
    if state == "finished":
      skipped.append(point)
      say(f"skip     {point.name}: {detail}")
      continue
    if dry_run:
      note = f"invalid: {invalid}" if invalid else (
          f"resume ({detail})" if state == "resume" else "new")
      say(f"{'run':8s} {point.name}: {note}")
    jobs.append((point, point_command(experiment, common, point, data_dir)))
  if dry_run:
    return 0

  state = {"experiment": experiment, "grid": [list(g) for g in grid],
           "params_override": list(common), "data_dir": data_dir, "parallel": parallel,
           "command": list(sys.argv), "started": _now(), "ended": None,
           "points": []}

  def record(outcomes):
    state["points"] = [
        {"name": p.name, "overrides": list(p.overrides),
         **dataclasses.asdict(outcomes.get(p.name, Outcome(SKIPPED)))}
        for p in points]
    _write_state(root, state)

  record({p.name: Outcome(NOT_RUN) for p, _ in jobs})
  outcomes = {}
  try:
    outcomes = run_points(jobs, max(1, parallel), say)
  finally:
    state["ended"] = _now()
    record(outcomes or {p.name: Outcome(NOT_RUN) for p, _ in jobs})
  failures = {name: o.error or "" for name, o in outcomes.items()
              if o.status == FAILED}
  for path in write_report(root, failures, [key for key, _ in grid]):
    say(f"wrote    {path}")
  ran = sum(o.status == FINISHED for o in outcomes.values())
  say(f"{ran} finished, {len(skipped)} skipped (finished before), "
      f"{len(failures)} failed")
  for name, line in failures.items():
    say(f"  failed {name}: {line}")
  return 1 if failures else 0


def _now() -> str:
  return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the CLI flags (only when run as a script, like the other tools)."""
  flags.DEFINE_string("experiment", None, "Experiment name or file, as for "
                      "estimator_cifar.run.")
  flags.DEFINE_multi_string("grid", [], "KEY=V1,V2,... : one axis of the grid "
                            "(repeat for a cross product).")
  flags.DEFINE_multi_string("params_override", [], "KEY=VALUE[,KEY=VALUE] "
                            "overrides for every point (repeatable).")
  flags.DEFINE_string("root", None, "Directory of the points' model_dirs.")
  flags.DEFINE_integer("parallel", 1, "Points trained at the same time.",
                       lower_bound=1)
  flags.DEFINE_string("data_dir", None, "Passed to every point.")
  flags.DEFINE_integer("max_points", DEFAULT_MAX_POINTS, "The most grid points "
                       "the sweep runs; a larger grid is refused.", lower_bound=1)
  flags.DEFINE_bool("dry_run", False, "List the points and what a run would "
                    "do with each; run nothing.")
  flags.DEFINE_bool("report_only", False, "Only write results.md, results.csv "
                    "and curves.png for the runs under --root.")


def main(argv: Sequence[str]) -> int:
  if len(argv) > 1:
    cli.exit_error(f"unexpected arguments {' '.join(argv[1:])}: pass everything as --flags")
  if not FLAGS.root:
    cli.exit_error("no --root: pass --root=DIR, the folder that holds the points")
  root = paths.expand(FLAGS.root)
  if FLAGS.report_only:
    written = write_report(root, *_on_record(root))
    if not written:
      cli.exit_error(f"no run under {root}: check --root")
    for path in written:
      print(f"wrote    {path}")
    return 0
  if not FLAGS.experiment:
    cli.exit_error("no --experiment: pass --experiment=NAME")
  signal.signal(signal.SIGTERM, _raise_stop)
  try:
    return sweep(FLAGS.experiment, FLAGS.grid, root, FLAGS.params_override,
                 FLAGS.parallel, paths.expand(FLAGS.data_dir), FLAGS.dry_run,
                 max_points=FLAGS.max_points)
  except SweepError as e:
    cli.exit_error(str(e))
  except (KeyboardInterrupt, _Stop):
    print("sweep: stopped; rerun the same command to resume", file=sys.stderr)
    return 130


if __name__ == "__main__":
  define_flags()
  app.run(lambda argv: sys.exit(main(argv)))
