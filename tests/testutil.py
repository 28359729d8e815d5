"""Shared test helpers: tiny configs, running the CLI and the tools, reading
what a run wrote, and waiting on other processes without fixed sleeps."""

import glob
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from estimator_cifar import config as config_lib
from estimator_cifar import rundir

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every wall-clock limit in the tests is a base figure times this factor: raise
# it on a slow or crowded machine (e.g. ESTIMATOR_CIFAR_TIME_SCALE=3).
TIME_SCALE_ENV = "ESTIMATOR_CIFAR_TIME_SCALE"
TIME_SCALE = float(os.environ.get(TIME_SCALE_ENV) or 1.0)

# Small and fast: a tiny model, small batches, no periodic evals.
TINY = ["model.name=tiny", "train.batch_size=16", "eval.batch_size=16",
        "summary.save_steps=5", "log.every_steps=5", "train.steps=6",
        "model.bn_momentum=0.9",
        # SavedModels at every eval are costly; test_export turns them back on
        # where it checks them.
        "eval.export_best=false", "eval.export_latest=0",
        # The built-in experiments train at train.precision=auto; the tests
        # check behaviour, with float32's numerics on every CPU and no probe.
        "train.precision=float32"]

# resnet_sgd's piecewise schedule turned into a constant rate: its boundaries
# and multipliers do not apply to `constant` and go with it.
CONSTANT_LR = ["schedule.name=constant", "schedule.boundaries_epochs=[]",
               "schedule.multipliers=[]"]

# The tiny model's trainable variables.
TINY_TRAINABLE = ["tiny/conv/kernel", "tiny/bn/gamma", "tiny/bn/beta",
                  "tiny/conv2/kernel", "tiny/bn2/gamma", "tiny/bn2/beta",
                  "tiny/logits/kernel", "tiny/logits/bias"]

# A sensible rate for each optimizer on the easy data (batch 32, 80 steps);
# the training tests use them and the learning-rate ranges must hold them.
OPTIMIZER_RATES = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 2e-3,
                   "adamw": 2e-3, "adagrad": 0.1, "adadelta": 1.0, "rmsprop": 1e-3,
                   "ftrl": 0.1}

# hooks.ProgressHook's line after the first: step, max, lr, examples/sec.
PROGRESS = re.compile(
    r"step (\d+)/(\d+), loss = \d+\.\d{4}, lr = ([\d.e+-]+) \(([\d.]+) "
    r"examples/sec; ([\d.]+) sec/batch; ETA \d+:\d\d:\d\d\)")


# pytest.ini gives each test 300 s; one that runs several TensorFlow
# processes (a cluster, a trainer beside an evaluator) gets this long.
MULTI_PROCESS_TIMEOUT_SECS = 600


def seconds(base: float) -> float:
  """A wall-clock limit of `base` seconds, scaled by TIME_SCALE."""
  return base * TIME_SCALE


def multi_process(test):
  """Marks a test (or the first user of a module fixture) that runs several
  TensorFlow processes: slow, with MULTI_PROCESS_TIMEOUT_SECS to finish."""
  return pytest.mark.slow(pytest.mark.timeout(MULTI_PROCESS_TIMEOUT_SECS)(test))


def tiny_config(*overrides: str, experiment: str = "resnet_sgd"):
  """A validated config from `experiment` with TINY and then `overrides`."""
  return config_lib.resolve(experiment, [",".join(TINY + list(overrides))])


# ------------------------------------------------------------- processes

def subprocess_env(**extra: str) -> dict:
  """The environment for a child Python: this checkout first on its path,
  quiet TensorFlow, unbuffered output, and no inherited TF_CONFIG."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
  env["PYTHONPATH"] = os.pathsep.join(
      p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)
  env.pop("TF_CONFIG", None)
  env.update(extra)
  return env


def cli_command(*args: str) -> list[str]:
  return [sys.executable, "-m", "estimator_cifar.run", *args]


def run_cli(*args: str, timeout: float = 300, env: dict | None = None):
  """Runs `python -m estimator_cifar.run ARGS` from the repo root; `timeout`
  is scaled by TIME_SCALE."""
  return subprocess.run(cli_command(*args), cwd=REPO_ROOT,
                        env=subprocess_env(**(env or {})), capture_output=True,
                        text=True, timeout=seconds(timeout))


def cli_in_process(capsys, *args: str) -> tuple[int, str, str]:
  """Runs the CLI's entry point (flags parsed as on a command line) in this
  process, without a new interpreter's TensorFlow import: (exit status,
  stdout, stderr)."""
  from estimator_cifar import run
  run.FLAGS.unparse_flags()
  run.FLAGS(["run", *args])
  try:
    code = run.run_main(["run"])
  except SystemExit as e:
    code = e.code
  finally:
    run.FLAGS.unparse_flags()
  out = capsys.readouterr()
  return code, out.out, out.err


def start_cli(*args: str, **popen_kwargs) -> subprocess.Popen:
  """Starts `python -m estimator_cifar.run ARGS`; the caller waits on it."""
  popen_kwargs.setdefault("env", subprocess_env())
  return subprocess.Popen(cli_command(*args), cwd=REPO_ROOT, **popen_kwargs)


def tool_command(name: str, *args: str) -> list[str]:
  """The command line that runs `python -m tools.NAME ARGS`."""
  return [sys.executable, "-m", f"tools.{name}", *args]


def run_tool(name: str, *args: str, timeout: float = 60, **kwargs):
  """Runs `python -m tools.NAME ARGS` from the repo root; `timeout` is
  scaled by TIME_SCALE."""
  kwargs.setdefault("env", subprocess_env())
  return subprocess.run(tool_command(name, *args), cwd=REPO_ROOT,
                        capture_output=True, text=True,
                        timeout=seconds(timeout), check=False, **kwargs)


class OutputReader:
  """Reads a child's stdout and stderr in threads as it runs, so its pipes
  never fill and a test can poll what it printed so far (`out`, `err`)."""

  def __init__(self, proc: subprocess.Popen):
    self.out: list[str] = []
    self.err: list[str] = []
    self._threads = [threading.Thread(target=lines.extend, args=(stream,), daemon=True)
                     for lines, stream in ((self.out, proc.stdout), (self.err, proc.stderr))]
    for thread in self._threads:
      thread.start()

  def text(self) -> tuple[str, str]:
    """(stdout, stderr) in full, once the child has exited and closed them."""
    for thread in self._threads:
      thread.join()
    return "".join(self.out), "".join(self.err)


def run_probe(module: str, *args: str, timeout: float = 300) -> dict:
  """Runs `python -m tests.MODULE ARGS` (a script that must start its own
  TensorFlow, e.g. with logical CPU devices) and returns its PROBE_JSON."""
  proc = subprocess.run([sys.executable, "-m", f"tests.{module}", *args],
                        cwd=REPO_ROOT, env=subprocess_env(), capture_output=True,
                        text=True, timeout=seconds(timeout))
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = next(l for l in proc.stdout.splitlines() if l.startswith("PROBE_JSON "))
  return json.loads(line[len("PROBE_JSON "):])


def wait_until(condition, timeout: float, interval: float = 0.05,
               message: str = "condition") -> None:
  """Polls `condition()` until it is true; fails after `timeout` (scaled)."""
  deadline = time.monotonic() + seconds(timeout)
  while not condition():
    assert time.monotonic() < deadline, f"timed out waiting for {message}"
    time.sleep(interval)


def closed_port() -> int:
  """A loopback TCP port that nothing listens on (bound, then released)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def error_line(returncode: int, stderr: str) -> str:
  """The one `error:` line of a failed run, after checking the contract:
  exit status 2, no traceback, exactly one such line."""
  assert returncode == 2, stderr[-3000:]
  assert "Traceback" not in stderr, stderr[-3000:]
  lines = [l for l in stderr.splitlines() if l.startswith("error: ")]
  assert len(lines) == 1, stderr[-3000:]
  return lines[0]


def checkpoint_steps(model_dir: str) -> list[int]:
  """The steps of the checkpoints in `model_dir` (by their index files)."""
  return sorted(rundir.checkpoint_step(path[:-len(".index")]) for path in
                glob.glob(os.path.join(model_dir, rundir.CHECKPOINT_INDEX_GLOB)))


# ------------------------------------------------------------ event files

def iter_events(directory: str):
  """(step, Summary.Value) for every value in the event files of `directory`."""
  from tensorflow.compat import v1
  for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
    for event in v1.train.summary_iterator(path):
      for value in event.summary.value:
        yield event.step, value


def read_events(directory: str) -> dict:
  """{tag: {step: Summary.Value}} from every event file in `directory`."""
  found = {}
  for step, value in iter_events(directory):
    found.setdefault(value.tag, {})[step] = value
  return found


def scalar_value(value) -> float | None:
  """The number in a scalar Summary.Value (v1 simple_value or a v2 rank-0
  numeric tensor); None for text, images, histograms and other kinds."""
  kind = value.WhichOneof("value")
  if kind == "simple_value":
    return value.simple_value
  if kind == "tensor" and value.metadata.plugin_data.plugin_name in (
      "", "scalars"):
    import numpy as np
    import tensorflow as tf
    array = tf.make_ndarray(value.tensor)
    if array.ndim == 0 and np.issubdtype(array.dtype, np.number):
      return float(array)
  return None


def scalars(events: dict) -> dict:
  """{tag: {step: float}} for the scalar tags of read_events' result."""
  out = {}
  for tag, by_step in events.items():
    numbers = {step: scalar_value(v) for step, v in by_step.items()}
    if all(n is not None for n in numbers.values()):
      out[tag] = numbers
  return out


# ---------------------------------------------------------------- models

def resnet_params(n: int, widths, version: int, classes: int) -> int:
  """Trainable parameters of a CIFAR ResNet (3x3 convs, 1x1 projections).

  conv kernel: 9 * c_in * c_out; batch norm: 2 * c (gamma, beta); projection
  shortcut where the shape changes: c_in * c_out (v1 adds a batch norm to it).
  v1 has a batch norm after the first conv; v2 one per block input and a final
  one; both end in a dense layer (64k * classes + classes).
  """
  total = 9 * 3 * 16
  total += 2 * 16 if version == 1 else 2 * widths[-1]
  c_in = 16
  for stage, c in enumerate(widths):
    for i in range(n):
      total += 9 * c_in * c + 9 * c * c + 2 * c * 2  # Two convs, two BNs.
      if version == 2:
        total += 2 * c_in - 2 * c  # v2's first BN sees the block input.
      if c_in != c or (stage > 0 and i == 0):
        total += c_in * c + (2 * c if version == 1 else 0)
      c_in = c
  return total + widths[-1] * classes + classes


def write_initial_checkpoint(cfg, plan, model_dir):
  """model.ckpt-0 with every variable of the training graph; the first batch."""
  import tensorflow as tf
  from estimator_cifar.data.input_pipeline import make_input_fn
  from estimator_cifar.model.model_fn import model_fn
  v1 = tf.compat.v1
  with tf.Graph().as_default():
    v1.set_random_seed(1)
    dataset = make_input_fn(cfg, plan.source, training=True)()
    features, labels = v1.data.make_one_shot_iterator(dataset).get_next()
    model_fn(features, labels, tf.estimator.ModeKeys.TRAIN,
             plan.model_params(cfg))
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      images = sess.run(features["images"])
      v1.train.Saver().save(sess, os.path.join(model_dir, "model.ckpt"),
                            global_step=0)
  return images


def png_header(width: int, height: int) -> bytes:
  """A PNG signature and IHDR chunk (8-bit RGB) claiming width x height."""
  import struct
  import zlib
  body = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + body +
          struct.pack(">I", zlib.crc32(body)))
