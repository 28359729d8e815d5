"""One writer per model_dir: a lock file per role, taken when a run starts.

The Estimator trusts that one process writes a model_dir; two trainers on one
folder would take turns writing checkpoints and mix two histories. Each role
that writes takes `<model_dir>/locks/<role>.lock`:

  trainer            a local train run, or a cluster's chief (its workers, ps
                     tasks share the chief's run and take no lock);
  evaluator-<eval>   a continuous-eval job or a cluster's evaluator, per eval
                     name (the folder its metrics go to);
  export             --mode=export.

The lock file is JSON naming its holder: pid, host, the process's start time
(to tell a reused pid), when it started and its command. It is written whole
to a temporary file and then hard-linked to its name, which fails if the name
exists, so exactly one process creates it, on local disks and over NFS alike.

A lock whose holder is gone is stale and taken over with one log line. On the
holder's machine that is decided from the process table: the pid is gone, a
zombie, or now another process (another start time). From another machine it
cannot be: the holder touches its lock file every HEARTBEAT_SECS, and a lock
whose file went untouched for STALE_AFTER_SECS is stale. A SIGKILLed holder
therefore never blocks the next run on its machine, and blocks another
machine's run for STALE_AFTER_SECS at most.

Before any lock is taken, `check_is_run_or_empty` refuses a folder of other
files: a lock, like the run after it, must not be written among them.

Imports no TensorFlow.
"""

import contextlib
import datetime
import json
import os
import shlex
import socket
import sys
import threading
import time
import uuid
from typing import Iterator

from absl import logging

from estimator_cifar import rundir
from estimator_cifar.rundir import disk_space
from estimator_cifar.errors import CheckpointError

TRAINER = "trainer"
EXPORT = "export"

# The holder refreshes its lock file's time this often; another machine takes
# the lock over once it is older than STALE_AFTER_SECS. The margin covers
# NFS's attribute cache (60 s at most by default) and clocks a little apart.
HEARTBEAT_SECS = 15.0
STALE_AFTER_SECS = 120.0
# A takeover is a few file operations; a claim this old was left by a process
# that died during one.
CLAIM_STALE_SECS = 30.0
# Each try either takes the lock or finds it held or being taken over.
_TRIES = 200
_RETRY_SECS = 0.05
# How many entries of a folder that is not a run the refusal lists.
_LISTED = 5


def evaluator(eval_name: str = rundir.EVAL_DIR) -> str:
  """The lock role of the continuous-eval job that writes `eval_name`."""
  return f"evaluator-{eval_name}"


def path(model_dir: str, role: str) -> str:
  """Where the lock of `role` lives in `model_dir`."""
  return os.path.join(model_dir, rundir.LOCK_DIR, role + ".lock")


# ------------------------------------------------------------ who is who

def _read_first_line(file_path: str) -> str | None:
  try:
    with open(file_path, encoding="utf-8") as f:
      return f.readline().strip() or None
  except OSError:
    return None


def machine() -> dict:
  """What tells this machine, boot and pid namespace from any other.

  Two machines can share a host name and containers share a boot; within
  one (host, boot, pid namespace) a pid means one process at a time.
  """
  try:
    pid_namespace = os.stat("/proc/self/ns/pid").st_ino
  except OSError:
    pid_namespace = None
  return {"host": socket.gethostname(),
          "boot_id": _read_first_line("/proc/sys/kernel/random/boot_id"),
          "pid_namespace": pid_namespace}


def process_start(pid: int) -> str | None:
  """The start time of process `pid` in clock ticks since boot, as a string.

  None when there is no such live process (gone or a zombie). Without /proc
  (not Linux) only its existence is known: "unknown".
  """
  try:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
      # Fields after the command name, which may itself hold spaces and ')'.
      fields = f.read().rsplit(")", 1)[1].split()
    state, start_ticks = fields[0], fields[19]  # stat(5): fields 3 and 22.
  except FileNotFoundError:
    if os.path.isdir("/proc/self"):
      return None
    return "unknown" if pid_exists(pid) else None
  except (OSError, IndexError):
    return "unknown"
  return None if state in ("Z", "X") else start_ticks


def pid_exists(pid: int) -> bool:
  """Whether a process `pid` exists (another user's too), by signal 0."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Another user's live process.
  return True


def _holder_record(role: str) -> dict:
  """What this process writes into a lock it takes."""
  return {"role": role, "pid": os.getpid(), **machine(),
          "process_start": process_start(os.getpid()),
          "started": datetime.datetime.now(datetime.timezone.utc).strftime(
              "%Y-%m-%d %H:%M:%S UTC"),
          "command": shlex.join([sys.executable] + sys.argv),
          "token": uuid.uuid4().hex}


def describe(holder: dict) -> str:
  """`pid 123 on host h (since ..., running `cmd`)` for messages."""
  return (f"pid {holder.get('pid')} on host {holder.get('host')} (since "
          f"{holder.get('started')}, running `{holder.get('command')}`)")


def stale_reason(holder: dict | None, age_secs: float) -> str | None:
  """Why the lock of `holder`, last touched `age_secs` ago, is stale; None if
  its holder may still run."""
  if holder is None or not isinstance(holder.get("pid"), int):
    return "its lock file is unreadable"
  here = machine()
  if all(holder.get(key) == value for key, value in here.items()):
    start = process_start(holder["pid"])
    if start is None:
      return f"pid {holder.get('pid')} is gone"
    if "unknown" not in (start, holder.get("process_start")) and \
        start != holder.get("process_start"):
      return f"pid {holder.get('pid')} is now another process"
    return None
  if age_secs > STALE_AFTER_SECS:
    return (f"its heartbeat stopped {age_secs:.0f} s ago (another machine's "
            f"lock is stale after {STALE_AFTER_SECS:.0f} s)")
  return None


# ------------------------------------------------------------ lock files

def _install(file_path: str, record: dict) -> bool:
  """Creates `file_path` holding `record`, whole, unless it exists."""
  tmp = f"{file_path}.{record['token']}.tmp"
  try:
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(record, f)
    os.link(tmp, file_path)  # Atomic, and fails if the name exists.
    return True
  except FileExistsError:
    # Over NFS a retried link reports EEXIST when its first try succeeded.
    return os.stat(tmp).st_nlink == 2
  finally:  # Also when the write failed (a full disk): leave nothing behind.
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)


def _read(file_path: str) -> tuple[dict | None, float]:
  """(the lock's record or None if unreadable, seconds since it was touched).

  Raises:
    FileNotFoundError: there is no lock (any more).
  """
  age = time.time() - os.stat(file_path).st_mtime
  try:
    with open(file_path, encoding="utf-8") as f:
      record = json.load(f)
  except FileNotFoundError:
    raise
  except (OSError, ValueError):
    return None, age
  return (record if isinstance(record, dict) else None), age


def _token(file_path: str) -> str | None:
  try:
    record, _ = _read(file_path)
  except FileNotFoundError:
    return None
  return (record or {}).get("token")


class Lock:
  """A lock this process holds; `release` (or leaving `held`) frees it."""

  def __init__(self, file_path: str, record: dict):
    self.path = file_path
    self.record = record
    self._stop = threading.Event()
    self._heartbeat = threading.Thread(target=self._beat, daemon=True,
                                       name=f"lock-heartbeat-{record['role']}")
    self._heartbeat.start()

  def _beat(self) -> None:
    """Touches the lock file so that other machines see its holder live."""
    while not self._stop.wait(HEARTBEAT_SECS):
      if _token(self.path) != self.record["token"]:
        logging.error("The %s lock %s was removed or taken over by another "
                      "process: another job may now write this model_dir.",
                      self.record["role"], self.path)
        return
      with contextlib.suppress(OSError):
        os.utime(self.path)

  def release(self) -> None:
    """Stops the heartbeat and removes the lock file if it is still ours."""
    self._stop.set()
    # Runs in `finally` blocks: an OSError here must not hide the run's own.
    with contextlib.suppress(OSError):
      if _token(self.path) == self.record["token"]:
        os.remove(self.path)
      # A job that wrote nothing else leaves the folder as it found it.
      os.rmdir(os.path.dirname(self.path))  # Only if no other lock is there.


def acquire(model_dir: str, role: str) -> Lock:
  """Takes the `role` lock of `model_dir`, taking over a stale one.

  Raises:
    CheckpointError: another live process holds it (named in the message), or
      the lock file cannot be written.
  """
  file_path = path(model_dir, role)
  try:
    return _acquire(file_path, model_dir, role)
  except OSError as e:
    unwritable = disk_space.unwritable_error(e, model_dir)  # Full, read-only.
    if unwritable is not None:
      raise unwritable from None
    raise CheckpointError(
        f"Cannot take the {role} lock of --model_dir={model_dir}: writing "
        f"{file_path} failed ({e.strerror or e}). Free space there or fix its "
        "permissions, or pass another --model_dir (the lock needs a file "
        "system with hard links).") from None


def _acquire(file_path: str, model_dir: str, role: str) -> Lock:
  """`acquire`, its OSErrors unexplained."""
  record = _holder_record(role)
  for _ in range(_TRIES):
    try:
      if _install(file_path, record):
        return Lock(file_path, record)
    except FileNotFoundError:  # No locks/ yet, or another job's release
      os.makedirs(os.path.dirname(file_path), exist_ok=True)  # removed it.
      continue
    try:
      holder, age = _read(file_path)
    except FileNotFoundError:
      continue  # Released meanwhile: try again.
    reason = stale_reason(holder, age)
    if reason is None:
      raise held_error(model_dir, role, holder)
    if _take_over(file_path, holder, reason, record):
      return Lock(file_path, record)
    time.sleep(_RETRY_SECS)  # Another process is taking it over.
  raise CheckpointError(
      f"Could not take the {role} lock {file_path}: other processes kept "
      "taking it. Run one job per --model_dir and role.")


def _take_over(file_path: str, holder: dict | None, reason: str,
               record: dict) -> bool:
  """Replaces the stale lock of `holder` by this process's; False if another
  process is taking it over.

  The stale lock may be removed only by the process that created a claim
  named after it: of two processes that find the same stale lock at once, one
  removes it and installs its own, the other sees a new holder on its next
  try. A claim is removed only after its owner's lock is in place.
  """
  token = (holder or {}).get("token") or "unreadable"
  claim = f"{file_path}.takeover-{token}"
  if not _install(claim, record):
    with contextlib.suppress(FileNotFoundError):
      if time.time() - os.stat(claim).st_mtime > CLAIM_STALE_SECS:
        os.remove(claim)  # Its owner died in the middle of a takeover.
    return False
  try:
    if _token(file_path) == (holder or {}).get("token"):
      with contextlib.suppress(FileNotFoundError):
        os.remove(file_path)
      logging.warning("Took over the stale %s lock %s of %s: %s.",
                      record["role"], file_path,
                      describe(holder) if holder else "an unknown process",
                      reason)
    return _install(file_path, record)
  finally:
    os.remove(claim)


def held_error(model_dir: str, role: str, holder: dict) -> CheckpointError:
  """The refusal of a second process for `role` in `model_dir`."""
  return CheckpointError(
      f"--model_dir={model_dir} is in use: its {role} is {describe(holder)}. "
      "One process per role writes a model_dir. Wait for it to finish, stop "
      f"it (`kill {holder['pid']}` on {holder.get('host')}; a trainer saves a "
      "checkpoint first), or choose another --model_dir. The lock is "
      f"{path(model_dir, role)}.")


@contextlib.contextmanager
def held(model_dir: str, role: str | None) -> Iterator[Lock | None]:
  """Holds the `role` lock of `model_dir` (none for role None) for the block,
  releasing it on return, on an exception, and on a SIGTERM turned into
  either."""
  lock = acquire(model_dir, role) if role else None
  try:
    yield lock
  finally:
    if lock is not None:
      lock.release()


# ------------------------------------------------------------ folders

def check_is_run_or_empty(model_dir: str) -> None:
  """Refuses a `model_dir` that holds files but no run.

  A run writes checkpoints, config.json and logs into its model_dir, and a
  later cleanup of it could take the folder's other files along.

  Raises:
    CheckpointError: a non-empty folder without config.json, a checkpoint,
      a run record or a lock.
  """
  try:
    entries = sorted(os.listdir(model_dir))
  except (FileNotFoundError, NotADirectoryError):
    return  # Created by the run; a file is refused where it is written.
  if not entries or rundir.holds_run(entries):
    return
  listed = ", ".join(entries[:_LISTED])
  if len(entries) > _LISTED:
    listed += f" and {len(entries) - _LISTED} more"
  raise CheckpointError(
      f"--model_dir={model_dir} is a folder of other files ({listed}), not a "
      f"run: it has no {rundir.CONFIG_FILE}, checkpoint or "
      f"{rundir.RUN_INFO_FILE}. A run writes its checkpoints and logs into "
      "its model_dir: pass a new or empty folder (e.g. a subfolder of this "
      "one), or the model_dir of an earlier run to continue it.")
