"""The peers tools.benchmark runs beside the training measurement.

A peer is another way to train the same network on the same machine: the
tf.keras `model.fit` script (tools/bench/peer_keras.py) and the hand-written minimal
Estimator (tools/bench/minimal_estimator.py). Each runs as a
child process, so that its imports, threads and memory are its own and not
the measured process's, under PEER_WRAPPER, which also takes its CPU time.

No TensorFlow here: the peers import it in their own processes.
"""

import dataclasses
import os
import re
import subprocess
import sys
from typing import Callable

from estimator_cifar.data import cifar

from .. import cli
from .measure import Rate

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
# The peers are scripts a user would write, run by path in their own process.
KERAS_PEER = os.path.join(BENCH_DIR, "peer_keras.py")
MINIMAL_PEER = os.path.join(BENCH_DIR, "minimal_estimator.py")
MINIMAL_WARMUP_STEPS = 10  # minimal_estimator.py's own untimed first call.

# Set to a Keras mixed-precision policy name, it makes PEER_WRAPPER set that
# global policy before the peer runs: the peer script itself has no flag for
# it, and a policy set before the model is built applies to all its layers.
KERAS_POLICY_ENV = "BENCHMARK_KERAS_POLICY"

# Runs a peer script with time.perf_counter wrapped so that each call also
# records process CPU time; the peers time their measured section with two
# perf_counter calls (nothing in TF, Keras or Estimator calls it), so the last
# two marks bracket it. Prints wall and CPU seconds of that section. Imports
# TensorFlow only when BENCHMARK_KERAS_POLICY is set (to set the policy), and
# then before perf_counter is wrapped.
PEER_WRAPPER = """
import os, runpy, sys, time
if os.environ.get("BENCHMARK_KERAS_POLICY"):
  import tensorflow as tf
  tf.keras.mixed_precision.set_global_policy(os.environ["BENCHMARK_KERAS_POLICY"])
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
class Peer:
  """One peer: what to run, how to read its rate, and in what precision.

  `args` gives the command line for each repeat (the minimal peer needs a
  fresh model_dir every time); `env` is added to the child's environment.
  """
  script: str
  args: Callable[[int], list[str]]
  pattern: re.Pattern
  precision: str | None = None  # Reported for the Keras peers.
  env: dict[str, str] = dataclasses.field(default_factory=dict)

  def run(self, repeat: int, timeout: float) -> tuple[Rate | None, str | None]:
    """Runs it once; (rate or None, note), as run_peer."""
    rate, note = run_peer(self.script, self.args(repeat), self.pattern,
                          timeout, self.env)
    policy = self.env.get(KERAS_POLICY_ENV)
    if note and policy:  # Tells it from the same script's float32 run.
      note = f"{note} (under the Keras policy {policy})"
    return rate, note


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
  """`path` (default: tools/bench/peer_keras.py) if it exists, else None."""
  path = path or KERAS_PEER
  return os.path.abspath(path) if os.path.isfile(path) else None


def keras_model_name(cfg) -> str | None:
  """The Keras peer's name for this experiment's network, None if it has none."""
  m = cfg.model
  if m.name == "resnet" and m.depth == 20 and m.version == 1:
    return "resnet20"
  if m.name == "convnet":
    return "convnet"
  return None


def run_peer(script: str, args: list[str], pattern: re.Pattern,
             timeout: float, env: dict[str, str] | None = None
             ) -> tuple[Rate | None, str | None]:
  """Runs a peer script under PEER_WRAPPER; returns (rate or None, note).

  The child gets this process's environment plus `env`, less a
  BENCHMARK_KERAS_POLICY inherited from the shell: only a peer that asks for
  a policy runs under one.
  """
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
  full_env.pop(KERAS_POLICY_ENV, None)
  full_env.update(env or {})
  name = os.path.basename(script)
  try:
    proc = subprocess.run([sys.executable, "-c", PEER_WRAPPER, script, *args],
                          capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=cli.CODE_ROOT)
  except subprocess.TimeoutExpired:
    return None, f"{name} timed out after {timeout:.0f}s"
  rate = parse_peer(proc.stdout, pattern)
  if rate is None:
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    return None, f"{name} exited {proc.returncode} without a rate: {' | '.join(tail)}"
  return rate, None


def build_peers(args, cfg, model_dir: str, notes: list[str]) -> dict[str, Peer]:
  """The peers --vs_keras and --vs_minimal ask for, by report name.

  `keras` is the Keras peer as a user runs it by default, in float32. When
  the experiment trains in a mixed precision, `keras_same_precision` is the
  same peer under that Keras global policy as well, so that the side-by-side
  compares like with like (bf16 on a CPU with AMX, say) next to the default.
  A peer that cannot run is left out with a note saying why.
  """
  peers = {}
  batch, steps, warmup = cfg.train.batch_size, args.steps, args.warmup
  precision = cfg.train.precision
  if args.vs_keras:
    script, model = find_keras_peer(args.keras_peer), keras_model_name(cfg)
    if script is None:
      notes.append(f"--vs_keras skipped: {args.keras_peer or KERAS_PEER} not "
                   "found; pass --keras_peer=PATH.")
    elif model is None:
      notes.append(f"--vs_keras skipped: the Keras peer has no network like "
                   f"model.name={cfg.model.name} depth={cfg.model.depth} "
                   f"version={cfg.model.version} (it has ResNet-20 v1 and the "
                   "tutorial convnet).")
    else:
      keras_args = lambda r: [
          "--steps", str(steps), "--warmup", str(warmup), "--batch", str(batch),
          "--model", model]
      peers["keras"] = Peer(script, keras_args, KERAS_LINE, "float32")
      if precision != "float32":
        notes.append(
            f"This run trains in {precision}: keras_* is the Keras peer in "
            f"float32 (its default), keras_same_precision_* the same peer "
            f"under the Keras global policy {precision}.")
        peers["keras_same_precision"] = Peer(
            script, keras_args, KERAS_LINE, precision,
            {KERAS_POLICY_ENV: precision})
  if args.vs_minimal and keras_model_name(cfg) != "resnet20":
    notes.append("--vs_minimal skipped: the minimal peer is ResNet-20 v1 only.")
  elif args.vs_minimal:
    data_dir, note = minimal_data(args.data_dir, model_dir)
    if note:
      notes.append(note)
    if data_dir:
      peers["minimal"] = Peer(MINIMAL_PEER, lambda r: [
          "--data_dir", data_dir, "--model_dir",
          os.path.join(model_dir, f"minimal{r}"),
          "--steps", str(steps + MINIMAL_WARMUP_STEPS), "--batch", str(batch)],
                              MINIMAL_LINE)
  return peers


def minimal_data(data_dir: str | None,
                 model_dir: str) -> tuple[str | None, str | None]:
  """A data_dir the minimal peer reads (noise records without one), note."""
  folder = cifar.CIFAR10.folder
  if data_dir:
    if os.path.isdir(os.path.join(data_dir, folder)):
      return data_dir, None
    return None, ("--vs_minimal skipped: the minimal peer reads CIFAR-10 "
                  f"binaries only (<data_dir>/{folder}); none under "
                  f"{data_dir}.")
  from estimator_cifar.data import fake  # pylint: disable=g-import-not-at-top
  fake_dir = os.path.join(model_dir, "minimal_data")
  fake.write_cifar10(fake_dir, train_per_file=2000, test=500, easy=False)
  return fake_dir, ("--vs_minimal without --data_dir: the minimal peer trains "
                    "on 10000 noise records in the CIFAR-10 binary layout.")
