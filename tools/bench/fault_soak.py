"""Fault soak: SIGKILL the tasks of a parameter-server cluster, restart, check.

  python -m tools.bench.fault_soak --kills=20 --seed=0 --work_dir=/tmp/soak \\
      --data_dir=DATA_DIR [--steps=6000]

Starts 1 ps, a chief, 1 worker and an evaluator of `resnet_sgd` with the tiny
model on loopback ports (DATA_DIR: any CIFAR-10 binary layout, e.g. from
`python tools/make_fake_cifar.py`). Then, `--kills` times, it waits a random
(seeded) time, picks one of chief, worker and evaluator, waits until that
task is up (it has logged since its last start), SIGKILLs it and starts it
again with the same command. After the last kill every task must end by
itself. The checks, each printed:

  - every task exits 0 by itself (ps included) within --end_secs of the last
    kill or of the run's end;
  - the newest checkpoint is at the final step or past it (asynchronous
    workers can overshoot by a step or two);
  - every checkpoint the `checkpoint` file keeps reads back whole;
  - eval/metrics.jsonl has no torn line and no checkpoint twice, and its
    last row is the final checkpoint.

Exit status 0 when every check passes. A summary line `SOAK_JSON {...}` gives
the figures (kills per role, times, steps). Task logs: WORK_DIR/logs/.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.bench.fault_soak", file=sys.stderr)
  sys.exit(2)

from .. import cli, launch_local_cluster

KILLABLE = ("chief", "worker", "evaluator")
# Frequent checkpoints and evaluations: more writes for a kill to land in.
SOAK = ["checkpoint.save_steps=200", "log.every_steps=50",
        "summary.save_steps=200", "eval.throttle_secs=5"]
POLL_SECS = 0.2
# What each role logs once it is up: a training step, or the evaluator loop.
READY_MARKS = {"chief": "step ", "worker": "step ",
               "evaluator": "Evaluating checkpoints of"}


def run_args(model_dir: str, data_dir: str, steps: int,
             extra: list[str] = ()) -> list[str]:
  """estimator_cifar.run flags of every task of the soak's cluster."""
  overrides = ["model.name=tiny", "train.batch_size=16", "eval.batch_size=16",
               f"train.steps={steps}", "eval.export_best=false",
               "eval.export_latest=0", "distribute.strategy=parameter_server",
               "distribute.max_worker_delay_secs=1",
               # One precision for every task, and no probe in each of them.
               "train.precision=float32", *extra]
  return ["--experiment=resnet_sgd", f"--model_dir={model_dir}",
          f"--data_dir={data_dir}", "--params_override=" + ",".join(overrides)]


class Task:
  """One role's process; its output appends to `<log_dir>/<role>-<index>.log`."""

  def __init__(self, role: str, index: int, spec: dict, args: list[str],
               log_dir: str):
    self.role, self.index, self.spec, self.args = role, index, spec, args
    self.name = f"{role}:{index}"
    self.log_path = os.path.join(log_dir, f"{role}-{index}.log")
    self.proc = None
    self.started_at = None
    self.log_offset = 0
    self.starts = 0

  def start(self) -> None:
    env = cli.child_env(TF_CONFIG=launch_local_cluster.tf_config(
        self.spec, self.role, self.index))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
    self.log_offset = os.path.getsize(self.log_path) \
        if os.path.exists(self.log_path) else 0
    with open(self.log_path, "a") as log:
      self.proc = subprocess.Popen(
          [sys.executable, "-m", "estimator_cifar.run", *self.args],
          cwd=cli.CODE_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    self.started_at = time.monotonic()
    self.starts += 1

  def output(self) -> str:
    """What this start of the task has logged so far."""
    with open(self.log_path, errors="replace") as f:
      f.seek(self.log_offset)
      return f.read()

  def ready(self) -> bool:
    return self.running() and READY_MARKS.get(self.role, "") in self.output()

  def running(self) -> bool:
    return self.proc is not None and self.proc.poll() is None

  def signal(self, signum: int) -> None:
    """Sends `signum` to this task's own pid (never a group or a name)."""
    if self.running():
      self.proc.send_signal(signum)

  def wait(self, timeout: float) -> int | None:
    try:
      return self.proc.wait(timeout)
    except subprocess.TimeoutExpired:
      return None

  def kill(self) -> None:
    if self.running():
      self.proc.kill()
      self.proc.wait()


class Cluster:
  """1 ps, a chief, `workers` workers and an evaluator on loopback."""

  def __init__(self, args: list[str], log_dir: str, workers: int = 1):
    self.spec = launch_local_cluster.cluster_spec(workers=workers, ps=1)
    roles = [("ps", 0), ("chief", 0)] + [("worker", i) for i in range(workers)]
    roles.append(("evaluator", 0))
    self.tasks = {f"{r}:{i}": Task(r, i, self.spec, args, log_dir)
                  for r, i in roles}

  def __getitem__(self, name: str) -> Task:
    return self.tasks[name]

  def start(self) -> None:
    for task in self.tasks.values():
      task.start()

  def wait_all(self, timeout: float) -> dict[str, tuple[int | None, float]]:
    """Waits for every task to exit; {name: (exit code, seconds waited)}."""
    start, ended = time.monotonic(), {}
    while len(ended) < len(self.tasks) and time.monotonic() - start < timeout:
      for name, task in self.tasks.items():
        if name not in ended and task.proc.poll() is not None:
          ended[name] = (task.proc.returncode, time.monotonic() - start)
      time.sleep(POLL_SECS)
    for name in self.tasks:
      ended.setdefault(name, (None, time.monotonic() - start))
    return ended

  def kill_all(self) -> None:
    for task in self.tasks.values():
      task.kill()


def wait_until(predicate, timeout: float) -> bool:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if predicate():
      return True
    time.sleep(POLL_SECS)
  return False


def soak(cluster: Cluster, kills: int, rng: random.Random, min_gap: float,
         max_gap: float, ready_secs: float, say) -> list[dict]:
  """SIGKILLs `kills` random tasks at random moments, restarting each."""
  done = []
  for k in range(kills):
    time.sleep(rng.uniform(min_gap, max_gap))
    victim = cluster[f"{rng.choice(KILLABLE)}:0"]
    if not wait_until(victim.ready, ready_secs):
      say(f"kill {k + 1}: {victim.name} not up after {ready_secs:.0f}s "
          f"(exit {victim.proc.poll()}); stopping the soak")
      break
    age = time.monotonic() - victim.started_at
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    victim.start()
    done.append({"role": victim.role, "age_s": round(age, 1)})
    say(f"kill {k + 1}/{kills}: {victim.name} SIGKILLed {age:.1f}s after "
        "its start; restarted")
  return done


def check_model_dir(model_dir: str, steps: int) -> dict:
  """The soak's checks on the model_dir; {"problems": [...], figures...}."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  import tensorflow as tf
  from estimator_cifar.rundir import checkpoint_check, metrics_log
  problems = []
  latest = tf.train.latest_checkpoint(model_dir)
  final = checkpoint_check.step_of(latest) if latest else 0
  if final < steps:
    problems.append(f"newest checkpoint {latest} is short of step {steps}")
  state = tf.train.get_checkpoint_state(model_dir)
  kept = list(state.all_model_checkpoint_paths) if state else []
  for prefix in kept:
    prefix = prefix if os.path.isabs(prefix) else os.path.join(model_dir, prefix)
    problem = checkpoint_check.checkpoint_problem(prefix)
    if problem:
      problems.append(problem)
  with open(metrics_log.path(model_dir)) as f:
    lines = f.read().split("\n")
  if lines[-1]:
    problems.append("metrics.jsonl does not end with a newline (torn)")
  rows = []
  for line in lines[:-1]:
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      problems.append(f"torn line in metrics.jsonl: {line[:80]!r}")
  names = [r.get("checkpoint") for r in rows]
  twice = sorted({n for n in names if names.count(n) > 1})
  if twice:
    problems.append(f"evaluated twice: {twice}")
  if not rows or rows[-1].get("checkpoint") != os.path.basename(latest or ""):
    problems.append(f"last metrics row is not the final checkpoint {latest}")
  return {"problems": problems, "latest": latest, "final_step": final,
          "kept_checkpoints": len(kept), "metrics_rows": len(rows)}


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--work_dir", required=True,
                      help="Holds model_dir/ and logs/; must not exist yet.")
  parser.add_argument("--kills", type=int, default=20)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--steps", type=int, default=6000)
  parser.add_argument("--min_gap", type=float, default=2.0,
                      help="Least seconds between two kills.")
  parser.add_argument("--max_gap", type=float, default=10.0)
  parser.add_argument("--ready_secs", type=float, default=180.0,
                      help="How long a restarted task may take to come up.")
  parser.add_argument("--end_secs", type=float, default=600.0,
                      help="How long the run may take to end after the kills.")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  if os.path.exists(args.work_dir):
    print(f"error: --work_dir {args.work_dir} exists; pass a new folder.",
          file=sys.stderr)
    return 2
  model_dir = os.path.join(args.work_dir, "model_dir")
  started = time.monotonic()

  def say(text):
    print(f"[soak {time.monotonic() - started:6.1f}s] {text}", flush=True)

  cluster = Cluster(run_args(model_dir, args.data_dir, args.steps, SOAK),
                    os.path.join(args.work_dir, "logs"))
  cluster.start()
  try:
    kills = soak(cluster, args.kills, random.Random(args.seed), args.min_gap,
                 args.max_gap, args.ready_secs, say)
    kills_over = time.monotonic() - started
    say(f"{len(kills)} kills done; waiting for every task to end")
    ended = cluster.wait_all(args.end_secs)
  finally:
    cluster.kill_all()
  say("exits: " + ", ".join(f"{n}={c} after {s:.0f}s" for n, (c, s) in
                            ended.items()))
  checks = check_model_dir(model_dir, args.steps)
  problems = checks.pop("problems")
  if len(kills) < args.kills:
    problems.append(f"only {len(kills)} of {args.kills} kills happened")
  problems += [f"{n} exited {c}" for n, (c, _) in ended.items() if c != 0]
  for problem in problems:
    say(f"FAILED: {problem}")
  summary = {"kills": len(kills), "seed": args.seed, "steps": args.steps,
             "kills_by_role": {r: sum(k["role"] == r for k in kills)
                               for r in KILLABLE},
             "kill_phase_s": round(kills_over, 1),
             "end_after_kills_s": round(max(s for _, s in ended.values()), 1),
             "total_s": round(time.monotonic() - started, 1),
             **checks, "problems": problems}
  print("SOAK_JSON " + json.dumps(summary), flush=True)
  return 0 if not problems else 1


if __name__ == "__main__":
  sys.exit(main())
