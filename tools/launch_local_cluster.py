"""Starts a whole TF_CONFIG cluster on this machine (127.0.0.1) with one command.

Usage (from a checkout; everything after `--` goes to estimator_cifar.run):
  python -m tools.launch_local_cluster --workers=1 --ps=1 --evaluator -- \\
      --experiment=resnet_sgd --model_dir=/tmp/ps_run \\
      --params_override=distribute.strategy=parameter_server

Each role (chief, `--workers` workers, `--ps` parameter servers, optionally an
evaluator) runs `python -m estimator_cifar.run ARGS` with its own TF_CONFIG on
free loopback ports chosen now; its output is streamed with a `[role:index]`
prefix. When the chief finishes, the workers and the evaluator get
`--grace_secs` to finish on their own (the evaluator still has to evaluate the
final checkpoint), and then the ps tasks PS_END_SECS to see the job's end and
exit by themselves; every process left after that is stopped. If a process
fails, everything is stopped, except that
with `--max_restarts=N` a failed worker is started again with the same
TF_CONFIG, up to N times, and rejoins the running cluster (parameter-server
training; a multi_worker_mirrored job cannot take a worker back and must be
restarted whole, resuming from its newest checkpoint).

Exit status: 0 when the chief, the workers and the evaluator exited 0; 1 when
one failed; 124 after `--timeout_secs`; 130 on Ctrl-C.
"""

import argparse
import json
import signal
import socket
import subprocess
import sys
import threading
import time

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.launch_local_cluster", file=sys.stderr)
  sys.exit(2)

from . import cli

from estimator_cifar.engine import distribute

HOST = "127.0.0.1"
POLL_SECS = 0.2
STOP_SECS = 5.0   # SIGTERM, then this long, then SIGKILL.
PS_END_SECS = 60.0  # A ps exits by itself this long after the chief at most.


def free_ports(n: int) -> list[int]:
  """n distinct free TCP ports on the loopback interface, chosen by the OS."""
  socks, ports = [], []
  for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    socks.append(s)
    ports.append(s.getsockname()[1])
  for s in socks:  # Held until all are chosen, so none is picked twice.
    s.close()
  return ports


def cluster_spec(workers: int, ps: int) -> dict[str, list[str]]:
  """The `cluster` part of TF_CONFIG: a chief, `workers` workers, `ps` ps."""
  ports = iter(free_ports(1 + workers + ps))
  spec = {"chief": [f"{HOST}:{next(ports)}"]}
  if workers:
    spec["worker"] = [f"{HOST}:{next(ports)}" for _ in range(workers)]
  if ps:
    spec["ps"] = [f"{HOST}:{next(ports)}" for _ in range(ps)]
  return spec


def tf_config(spec: dict, role: str, index: int) -> str:
  return json.dumps({"cluster": spec, "task": {"type": role, "index": index}})


class Task:
  """One role's process, its output pump and its restart count."""

  def __init__(self, role: str, index: int, spec: dict, run_args: list[str],
               out, lock: threading.Lock):
    self.role, self.index = role, index
    self.name = f"{role}:{index}"
    self.spec, self.run_args, self.out, self.lock = spec, run_args, out, lock
    self.proc: subprocess.Popen | None = None
    self.restarts = 0
    self.returncode: int | None = None

  def start(self) -> None:
    # In the launcher's folder, so relative paths mean what the user typed.
    env = cli.child_env(TF_CONFIG=tf_config(self.spec, self.role, self.index))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "estimator_cifar.run", *self.run_args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1)
    self.returncode = None
    self.say(f"started pid={self.proc.pid}")
    threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()

  def _pump(self, proc: subprocess.Popen) -> None:
    for line in proc.stdout:
      self.write(f"[{self.name}] {line.rstrip()}")

  def write(self, line: str) -> None:
    with self.lock:
      print(line, file=self.out, flush=True)

  def say(self, text: str) -> None:
    self.write(f"[launcher] {self.name} {text}")

  def poll(self) -> int | None:
    if self.returncode is None and self.proc is not None:
      self.returncode = self.proc.poll()
    return self.returncode

  def stop(self) -> None:
    """SIGTERM, then SIGKILL after STOP_SECS; only this task's own pid."""
    if self.proc is None or self.poll() is not None:
      return
    self.proc.terminate()
    try:
      self.proc.wait(STOP_SECS)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      self.proc.wait()
    self.returncode = self.proc.returncode
    self.say(f"stopped (exit {self.returncode})")


def parse_args(argv: list[str] | None):
  parser = argparse.ArgumentParser(
      description=__doc__.splitlines()[0],
      usage="%(prog)s [options] -- RUN_ARGS (flags of estimator_cifar.run)")
  parser.add_argument("--workers", type=int, default=1,
                      help="Workers besides the chief.")
  parser.add_argument("--ps", type=int, default=1,
                      help="Parameter servers (0 for multi_worker_mirrored).")
  parser.add_argument("--evaluator", action=argparse.BooleanOptionalAction,
                      default=True, help="Also run an evaluator task.")
  parser.add_argument("--max_restarts", type=int, default=0,
                      help="Restart a failed worker up to this many times.")
  parser.add_argument("--grace_secs", type=float, default=300.0,
                      help="After the chief is done, how long the workers and "
                      "the evaluator may take to finish on their own.")
  parser.add_argument("--timeout_secs", type=float, default=0.0,
                      help="Stop everything after this long (0: never).")
  argv = sys.argv[1:] if argv is None else argv
  if "--" in argv:
    cut = argv.index("--")
    own, run_args = argv[:cut], argv[cut + 1:]
  else:
    own, run_args = argv, []
  args = parser.parse_args(own)
  if not run_args:
    parser.error("pass the estimator_cifar.run flags after `--`, e.g. "
                 "-- --experiment=resnet_sgd --model_dir=/tmp/run")
  if any((a == "--mode" or a.startswith("--mode=")) and
         a != "--mode=train_and_eval" for a in run_args):
    parser.error("a cluster runs --mode=train_and_eval (the default); the "
                 "evaluator task does the evaluation.")
  if args.workers < 0 or args.ps < 0:
    parser.error("--workers and --ps must be >= 0")
  return args, run_args


def main(argv: list[str] | None = None, out=None) -> int:
  """Runs the cluster until the chief is done; returns the exit status."""
  out = out or sys.stdout
  args, run_args = parse_args(argv)
  spec = cluster_spec(args.workers, args.ps)
  lock = threading.Lock()
  roles = [("ps", i) for i in range(args.ps)] + [("chief", 0)] + \
      [("worker", i) for i in range(args.workers)]
  if args.evaluator:
    roles.append(("evaluator", 0))
  tasks = [Task(r, i, spec, run_args, out, lock) for r, i in roles]
  with lock:
    print(f"[launcher] cluster {json.dumps(spec)}", file=out, flush=True)
    if len(roles) - args.evaluator > 1:  # A lone chief starts no server.
      ports = [int(a.rpartition(":")[2]) for hosts in spec.values() for a in hosts]
      print("[launcher] warning: " + distribute.exposure_warning(
          "The cluster", ports), file=out, flush=True)
  interrupted = []
  previous = {s: signal.signal(s, lambda *_: interrupted.append(1))
              for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    for task in tasks:
      task.start()
    return _supervise(args, tasks, interrupted, out, lock)
  finally:
    for task in tasks:
      task.stop()
    for s, handler in previous.items():
      signal.signal(s, handler)


def _supervise(args, tasks: list[Task], interrupted: list, out, lock) -> int:
  """Watches the tasks; returns the exit status (see the module docstring)."""
  start = time.time()
  chief = next(t for t in tasks if t.role == "chief")
  finishers = [t for t in tasks if t.role in ("chief", "worker", "evaluator")]
  chief_done_at = finishers_done_at = None
  finished = set()

  def say(text):
    with lock:
      print(f"[launcher] {text}", file=out, flush=True)

  while True:
    time.sleep(POLL_SECS)
    if interrupted:
      say("interrupted; stopping every task")
      return 130
    if args.timeout_secs and time.time() - start > args.timeout_secs:
      say(f"timeout after {args.timeout_secs:.0f}s; stopping every task")
      return 124
    for task in finishers + [t for t in tasks if t.role == "ps"]:
      code = task.poll()
      if code == 0 and task not in finished:
        finished.add(task)
        task.say("finished (exit 0)")
      if code is None or code == 0:
        continue
      if task.role == "worker" and task.restarts < args.max_restarts:
        task.restarts += 1
        task.say(f"exited with {code}; restart {task.restarts} of "
                 f"{args.max_restarts}")
        task.start()
        continue
      task.say(f"failed with exit {code}; stopping every task")
      return 1
    if chief.poll() == 0 and chief_done_at is None:
      chief_done_at = time.time()
      say("chief finished; waiting for the workers and the evaluator")
    if all(t.poll() == 0 for t in finishers):
      serving = [t.name for t in tasks if t.role == "ps" and t.poll() is None]
      if not serving:
        say("every task finished")
        return 0
      if finishers_done_at is None:
        finishers_done_at = time.time()
        say("chief, workers and evaluator finished; waiting for the ps tasks")
      if time.time() - finishers_done_at > PS_END_SECS:
        say(f"{', '.join(serving)} still running {PS_END_SECS:.0f}s later; "
            "stopping them")
        return 0
    if chief_done_at and time.time() - chief_done_at > args.grace_secs:
      left = [t.name for t in finishers if t.poll() is None]
      say(f"{', '.join(left)} still running {args.grace_secs:.0f}s after the "
          "chief finished; stopping every task")
      return 1


if __name__ == "__main__":
  sys.exit(main())
