"""`<model_dir>/run_info.json`: what ran, where, with what, and how it ended.

Every train-mode run writes one record, so that a results table months later
can still say which code, packages and machine produced a figure, and whether
the run finished or was stopped:

  status        "running" while training; then "finished", "stopped_nan" (loss
                became NaN/Inf), "failed" (with `error`) or "interrupted"
                (Ctrl-C) or "preempted" (SIGTERM: a checkpoint was saved
                at the current step; see preemption.py). A process killed
                outright (SIGKILL, preemption, power) cannot write anything:
                its record stays "running", and the next run in that
                model_dir files it under `history` as "killed_or_preempted".
  start_time, end_time   ISO 8601 with the UTC offset; `duration_s`.
  start_step, final_step the newest checkpoint's step before and after;
                `resumed` is true when training started from a checkpoint.
  history       earlier attempts in this model_dir, oldest first (each record
                without its history, and without its config where the next
                attempt used the same one).
  config        the full resolved config (as in config.json).
  command, cwd  sys.argv and the working directory; `data_dir` as resolved.
  package       name, version, git commit and dirty flag of a checkout (null
                when not run from a git checkout or without git).
  versions      python, tensorflow, tensorflow_estimator, numpy, absl,
                tensorflow_datasets.
  host, devices hostname, platform, CPU count, pid; the physical devices
                TensorFlow sees.
  precision     for train.precision=auto, what it chose, why, and the
                measured mixed_bfloat16/float32 speed ratio (engine/
                precision.py), written as the run ends; null for a precision
                set explicitly.

The file is replaced atomically (tmp + os.replace), so a reader never sees half
a record. Only the chief writes it: workers, parameter servers and evaluators
of a TF_CONFIG cluster share the chief's model_dir.

This module imports TensorFlow lazily, so `run.py` can read a recorded config
before TensorFlow loads.
"""

import datetime
import importlib.metadata
import json
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import time
from typing import Any

from absl import logging

from estimator_cifar import config as config_lib
from estimator_cifar import version
from estimator_cifar import rundir
from estimator_cifar.rundir import metrics_log
from estimator_cifar.errors import ConfigError, UserError

FORMAT_VERSION = 1

RUNNING = "running"
FINISHED = "finished"
STOPPED_NAN = "stopped_nan"
FAILED = "failed"
INTERRUPTED = "interrupted"
KILLED = "killed_or_preempted"
PREEMPTED = "preempted"  # preemption.Preempted's `run_status` on SIGTERM.

# Distribution names per reported package; the first one installed wins
# (TensorFlow ships under several names).
PACKAGES = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu",
                   "tensorflow-macos", "tensorflow-intel"),
    "tensorflow_estimator": ("tensorflow-estimator",),
    "numpy": ("numpy",),
    "absl": ("absl-py",),
    "tensorflow_datasets": ("tensorflow-datasets",),
}
# Settings outside the config that change what a run does or where it runs.
ENV_KEYS = ("CUDA_VISIBLE_DEVICES", "TF_CONFIG", "TF_XLA_FLAGS",
            "TF_DETERMINISTIC_OPS", "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS")
# A NaN stop is recognised by the exception's class name (NanLossDuringTraining-
# Error from TF's NanTensorHook, or this package's own NaN error), so this
# module needs no import of either.
# What to do about a recorded config.json that cannot be used.
_RECORDED_FIX = ("It is written by training; retrain, or pass --experiment "
                 "with the training overrides and a --model_dir without it.")
_NAN_CLASS = re.compile(r"(?:^|[a-z0-9_])(?:NaN|Nan|NonFinite)(?=[A-Z_]|$)")
_GIT_TIMEOUT_S = 5


def path(model_dir: str) -> str:
  return os.path.join(model_dir, rundir.RUN_INFO_FILE)


def read(model_dir: str) -> dict[str, Any] | None:
  """The record in `model_dir`, or None if there is none or it is unreadable."""
  try:
    with open(path(model_dir), encoding="utf-8") as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) else None


def start(cfg: config_lib.ExperimentConfig, model_dir: str, mode: str,
          data_dir: str | None, argv: list[str] | None = None
          ) -> dict[str, Any] | None:
  """Writes the "running" record of a train-mode run before it trains.

  A previous record in `model_dir` moves into `history`; if it still says
  "running", that process died without a word (SIGKILL, preemption) and is
  filed as "killed_or_preempted".

  Args:
    cfg: the resolved config.
    model_dir: the run's model_dir (created if missing).
    mode: the train mode.
    data_dir: as passed to modes.run (None: the default cache).
    argv: the command line; default sys.argv.

  Returns:
    The record to hand to `end`, or None where this process is not the chief
    of a cluster (it writes nothing).
  """
  if not _is_chief():
    return None
  os.makedirs(model_dir, exist_ok=True)
  previous = read(model_dir)
  history = []
  config = cfg.to_dict()
  if previous is not None:
    history = previous.pop("history", None)
    history = history if isinstance(history, list) else []  # Garbage: none.
    if previous.get("status") == RUNNING:
      previous["status"] = KILLED
    if previous.get("config") == config:
      previous.pop("config", None)  # Only a changed config is worth keeping.
    history.append(previous)
  start_step = _checkpoint_step(model_dir)
  argv = list(sys.argv if argv is None else argv)
  record = {
      "format_version": FORMAT_VERSION,
      "status": RUNNING,
      "error": None,
      "experiment": cfg.name,
      "mode": mode,
      "model_dir": os.path.abspath(model_dir),
      "data_dir": os.path.abspath(data_dir) if data_dir else None,
      "start_time": _now(),
      "end_time": None,
      "duration_s": None,
      "start_step": start_step,
      "final_step": None,
      "resumed": start_step > 0,
      "final_metrics": None,
      "command": argv,
      "command_line": shlex.join(argv),
      "python_executable": sys.executable,
      "cwd": os.getcwd(),
      "package": package_info(),
      "versions": package_versions(),
      "host": host_info(),
      "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ},
      "devices": device_list(),
      "precision": None,  # auto's decision, once made (see `end`).
      "history": history,
      "config": config,
  }
  _write(model_dir, record)
  record["_t0"] = time.monotonic()  # Not written: `end` measures duration_s.
  return record


def end(record: dict[str, Any] | None, error: BaseException | None = None,
        result: dict | None = None,
        precision: dict[str, Any] | None = None) -> dict[str, Any] | None:
  """Completes a record from `start` with how the run ended; rewrites the file.

  Args:
    record: what `start` returned (None: nothing to do).
    error: the exception that ended the run, or None if it finished.
    result: the last eval metrics, kept as `final_metrics`.
    precision: train.precision=auto's decision (precision.run_fact), if made.

  Returns:
    The completed record.
  """
  if record is None:
    return None
  record["status"], record["error"] = outcome(error)
  record["end_time"] = _now()
  record["duration_s"] = round(time.monotonic() - record.pop("_t0"), 3)
  record["final_step"] = _checkpoint_step(record["model_dir"])
  if result:
    record["final_metrics"] = metrics_log.plain_metrics(result)
  if precision is not None:
    record["precision"] = precision
  try:
    _write(record["model_dir"], record)
  except OSError as e:  # Must not hide the error that ended the run.
    logging.warning("Could not update %s: %s", path(record["model_dir"]), e)
  return record


def outcome(error: BaseException | None) -> tuple[str, str | None]:
  """(status, error message) for how a run ended; see the module docstring."""
  if error is None:
    return FINISHED, None
  if isinstance(error, KeyboardInterrupt):
    return INTERRUPTED, "interrupted (KeyboardInterrupt)"
  message = str(error)
  if getattr(error, "run_status", None):  # An orderly stop, e.g. on SIGTERM.
    return error.run_status, message
  if _NAN_CLASS.search(type(error).__name__):
    return STOPPED_NAN, message
  if isinstance(error, UserError):
    return FAILED, message
  return FAILED, f"{type(error).__name__}: {message}"


def package_info() -> dict[str, Any]:
  """This package's version and, from a git checkout, its commit."""
  info = {"name": "estimator_cifar", "version": version.__version__,
          "git_commit": None, "git_dirty": None}
  info.update(git_state(os.path.dirname(os.path.abspath(version.__file__))))
  return info


def git_state(package_dir: str) -> dict[str, Any]:
  """{"git_commit", "git_dirty"} if `package_dir` is a checkout's package.

  An installed copy can sit inside some other repository (a virtualenv in a
  project); only a checkout whose top level holds this very package counts.
  Returns {} without git, outside a checkout, or if git fails.
  """
  try:
    lines = _git(package_dir, "rev-parse", "--show-toplevel", "HEAD").split()
    top, commit = lines[0], lines[1]
    if os.path.realpath(os.path.join(top, os.path.basename(package_dir))) != \
        os.path.realpath(package_dir):
      return {}
    dirty = _git(top, "status", "--porcelain", "--untracked-files=no").strip()
  except (OSError, subprocess.SubprocessError, IndexError):
    return {}
  return {"git_commit": commit, "git_dirty": bool(dirty)}


def _git(cwd: str, *args: str) -> str:
  return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                        check=True, timeout=_GIT_TIMEOUT_S).stdout


def package_versions() -> dict[str, str | None]:
  """Versions of Python and the packages that decide what a run computes."""
  versions = {"python": platform.python_version()}
  for key, distributions in PACKAGES.items():
    versions[key] = None
    for name in distributions:
      try:
        versions[key] = importlib.metadata.version(name)
        break
      except importlib.metadata.PackageNotFoundError:
        continue
  tf = sys.modules.get("tensorflow")
  if tf is not None and getattr(tf, "__version__", None):
    versions["tensorflow"] = tf.__version__  # The one actually imported.
  return versions


def host_info() -> dict[str, Any]:
  return {"hostname": socket.gethostname(), "platform": platform.platform(),
          "cpu_count": os.cpu_count(), "pid": os.getpid()}


def device_list() -> list[dict[str, Any]]:
  """The physical devices TensorFlow sees, with GPU names where available.

  Listing physical devices does not create a GPU context (no memory is taken,
  logical device settings made later still apply).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  devices = []
  for device in tf.config.list_physical_devices():
    entry = {"name": device.name, "type": device.device_type}
    if device.device_type == "GPU":
      try:
        details = tf.config.experimental.get_device_details(device)
      except (ValueError, RuntimeError):
        details = {}
      entry.update({k: rundir.json_ready(v) for k, v in details.items()})
    devices.append(entry)
  return devices


def recorded_config(model_dir: str, overrides: list[str]
                    ) -> config_lib.ExperimentConfig | None:
  """The config a training run wrote to `model_dir`, with `overrides` on top.

  `--mode=eval` uses it so that evaluating a model_dir measures what training
  measured: the same data, model and EMA choice, whatever the experiment file
  says today.

  Returns:
    The validated config, or None if `model_dir` has no config.json.

  Raises:
    ConfigError: config.json is unreadable or holds a value of the wrong
      type, or an override is invalid.
  """
  try:
    values = rundir.read_config(model_dir)
  except (OSError, ValueError) as e:
    raise ConfigError(f"Cannot read {rundir.config_path(model_dir)} ({e}). "
                      f"{_RECORDED_FIX}")
  if values is None:
    return None
  try:
    cfg = config_lib.from_dict(values)
  except ConfigError as e:
    raise ConfigError(f"{rundir.config_path(model_dir)}: {e} "
                      f"{_RECORDED_FIX}") from None
  return config_lib.validate(config_lib.apply_overrides(cfg, overrides))


def recorded_data_dir(model_dir: str) -> str | None:
  """The data_dir the last training run used, if recorded and still there."""
  data_dir = (read(model_dir) or {}).get("data_dir")
  return data_dir if isinstance(data_dir, str) and os.path.isdir(data_dir) \
      else None


def _is_chief() -> bool:
  """Whether this process owns the model_dir under TF_CONFIG (or runs alone)."""
  try:
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
  except ValueError:
    return True  # Estimator itself will reject it with a clearer message.
  cluster, task = tf_config.get("cluster") or {}, tf_config.get("task") or {}
  if not cluster or not task.get("type"):
    return True
  return rundir.is_chief(task["type"], int(task.get("index", 0)),
                         [role for role, tasks in cluster.items() if tasks])


def _checkpoint_step(model_dir: str) -> int:
  """The global step of the newest checkpoint in `model_dir`; 0 if none."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return rundir.checkpoint_step(tf.train.latest_checkpoint(model_dir)) or 0


def _now() -> str:
  return datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")


def _write(model_dir: str, record: dict[str, Any]) -> None:
  """Replaces run_info.json atomically: readers see the old or the new one."""
  text = json.dumps({k: v for k, v in record.items() if not k.startswith("_")},
                    indent=2, sort_keys=False, default=str)
  tmp = path(model_dir) + f".tmp{os.getpid()}"
  try:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text + "\n")
    os.replace(tmp, path(model_dir))
  except OSError:  # E.g. a full disk: leave no half-written temp file.
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
