"""A model_dir that cannot take writes: full, read-only or not permitted.

Training writes a checkpoint (data, index and meta graph), the graph and event
files; eval its events and metrics, export a SavedModel. When the filesystem
fills up, TensorFlow raises ResourceExhaustedError from deep inside a hook; its
Saver writes the `checkpoint` state file only after a complete save, so the
previous checkpoint stays the newest and whole. This module checks for room
before training (the newest checkpoint's size is what the next save needs),
recognises "no space" and "read-only" errors however deep they come, and
removes the temp files a failed write left (TensorFlow's own, never the
user's). `writes_into` does all of that around a mode. TF-free: sizes and
names only.
"""

import contextlib
import errno
import glob
import os
import re
import shutil
import threading

from estimator_cifar.errors import CheckpointError, DiskFullError, UserError
from estimator_cifar.rundir import (CHECKPOINT_BASENAME, STATE_FILE,
                                    state_checkpoint)

NO_SPACE = "No space left on device"
# Causes of a refused write, by errno: TensorFlow's OpErrors carry only the
# text, so each is also looked for in the message.
FULL = {errno.ENOSPC: NO_SPACE, errno.EDQUOT: "Disk quota exceeded"}
NOT_WRITABLE = {errno.EROFS: "Read-only file system",
                errno.EACCES: "Permission denied",
                errno.EPERM: "Operation not permitted"}
GRAPH_FILE = "graph.pbtxt"  # Rewritten by Estimator at every start.
_CHECKPOINT = re.escape(CHECKPOINT_BASENAME) + r"-\d+"
# Temp names of TensorFlow's atomic writes (file_io.atomic_write_string_to_file:
# the graph, the state file, a checkpoint's meta graph), of the Saver's sharded
# save, and of Estimator's SavedModel export before its rename.
TF_TEMP = re.compile(
    rf"^(({re.escape(GRAPH_FILE)}|{re.escape(STATE_FILE)}|{_CHECKPOINT}\.meta)"
    rf"\.tmp[0-9a-f]{{32}}|{_CHECKPOINT}_temp(_[0-9a-f]{{32}})?|temp-\d+)$")
MB = 1 << 20


def checkpoint_bytes(prefix: str | None) -> int:
  """Bytes of the files of checkpoint `prefix` (data, index, meta); 0 if None."""
  if not prefix:
    return 0
  return sum(os.path.getsize(p) for p in glob.glob(glob.escape(prefix) + ".*")
             if os.path.isfile(p))


def needed_bytes(model_dir: str, latest: str | None) -> int:
  """Room a resumed run needs before its next checkpoint lands."""
  graph = os.path.join(model_dir, GRAPH_FILE)
  return checkpoint_bytes(latest) + (
      os.path.getsize(graph) if os.path.isfile(graph) else 0)


def free_bytes(model_dir: str) -> int:
  return shutil.disk_usage(model_dir).free


def check(model_dir: str, latest: str | None) -> None:
  """Raises DiskFullError before training if the next save cannot fit."""
  need = needed_bytes(model_dir, latest)
  if need and free_bytes(model_dir) < need:
    raise error(model_dir, latest)


def _cause(exc: BaseException | None, causes: dict[int, str],
           within: str | None = None) -> str | None:
  """The text of `causes` that `exc`, or an exception it came from, shows.

  With `within`, only an exception whose message or file names a path in
  that folder counts (a refused read of the data is not the model_dir's).
  """
  prefixes = (within, os.path.abspath(within)) if within else ("",)
  seen = set()
  while exc is not None and id(exc) not in seen:
    seen.add(id(exc))
    text = f"{exc} {getattr(exc, 'filename', '') or ''}"
    if any(prefix in text for prefix in prefixes):
      if isinstance(exc, OSError) and exc.errno in causes:
        return causes[exc.errno]
      for cause in causes.values():
        if cause in text:
          return cause
    exc = exc.__cause__ or exc.__context__
  return None


def not_writable_error(model_dir: str, reason: str) -> CheckpointError:
  """The one message for a model_dir that cannot be created or written."""
  return CheckpointError(
      f"Cannot write to --model_dir={model_dir} ({reason}). Checkpoints, "
      "evaluations, exports and logs go there: pass a directory you can write "
      "to (copy a run out of a read-only place first), or fix its permissions.")


def unwritable_error(exc: BaseException, model_dir: str
                     ) -> DiskFullError | CheckpointError | None:
  """`exc` as one user error if a full or read-only model_dir caused it.

  A full disk's error comes after removing TensorFlow's temp files; a refused
  write counts only where it names a path in model_dir. None for any other
  exception.
  """
  cause = _unwritable_cause(exc, model_dir)
  if cause is None:
    return None
  if cause not in FULL.values():
    return not_writable_error(model_dir, cause)
  remove_temp_files(model_dir)
  newest = state_checkpoint(model_dir)
  return error(model_dir, os.path.join(model_dir, newest) if newest else None)


def _unwritable_cause(exc: BaseException | None, model_dir: str) -> str | None:
  """A text of FULL or NOT_WRITABLE that `exc` shows, or None."""
  return _cause(exc, FULL) or _cause(exc, NOT_WRITABLE, within=model_dir)


@contextlib.contextmanager
def writes_into(model_dir: str):
  """Raises a full or read-only `model_dir` met inside as one user error.

  TensorFlow's event writer threads die of the same cause with a traceback of
  their own; inside, those are silenced: the main thread reports it once.
  """
  previous_hook = threading.excepthook

  def quiet_hook(args):
    if _unwritable_cause(args.exc_value, model_dir) is None:
      previous_hook(args)

  threading.excepthook = quiet_hook
  try:
    yield
  except UserError:
    raise  # Already one message (a DataError may quote "Permission denied").
  except Exception as e:
    user_error = unwritable_error(e, model_dir)
    if user_error is None:
      raise
    raise user_error from None
  finally:
    threading.excepthook = previous_hook


def error(model_dir: str, latest: str | None) -> DiskFullError:
  """The one message for a full model_dir, naming the room needed."""
  need = needed_bytes(model_dir, latest)
  try:
    free = f"{free_bytes(model_dir) / MB:.1f} MB free"
  except OSError:
    free = "no room left"
  needs = (f"a checkpoint of this run needs about {need / MB:.1f} MB (with the "
           "graph file) plus room for event files" if need else
           "the run needs room for its first checkpoint and event files")
  kept = (f"The newest checkpoint {os.path.basename(latest)} is intact; once "
          "there is room, the same command continues from it." if latest else
          "No checkpoint was written.")
  return DiskFullError(
      f"The filesystem of model_dir {model_dir} is full ({free}), and {needs}. "
      f"Free space there or pass a --model_dir on a larger disk. {kept}")


def remove_temp_files(model_dir: str) -> list[str]:
  """Deletes what TensorFlow's failed atomic writes left under model_dir.

  Returns:
    Their paths relative to model_dir (e.g. `export/temp-1700000000`).
  """
  removed = []
  for folder, dirs, files in os.walk(model_dir):
    for name in sorted(dirs + files):
      path = os.path.join(folder, name)
      if not TF_TEMP.match(name):
        continue
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
        dirs.remove(name)
      else:
        try:
          os.remove(path)
        except OSError:
          continue
      removed.append(os.path.relpath(path, model_dir))
  return removed
