"""A full disk under the model_dir: one message instead of a TensorFlow trace.

Training writes a checkpoint (data, index and meta graph), the graph and event
files. When the filesystem fills up, TensorFlow raises ResourceExhaustedError
from deep inside a hook; its Saver writes the `checkpoint` state file only
after a complete save, so the previous checkpoint stays the newest and whole.
This module checks for room before training (the newest checkpoint's size is
what the next save needs), recognises "no space" errors however deep they
come, and removes the temp files a failed write left (TensorFlow's own, never
the user's). TF-free: sizes and names only.
"""

import errno
import glob
import os
import re
import shutil

from estimator_cifar.errors import DiskFullError
from estimator_cifar.rundir import CHECKPOINT_BASENAME, STATE_FILE

NO_SPACE = "No space left on device"
GRAPH_FILE = "graph.pbtxt"  # Rewritten by Estimator at every start.
# Temp names of TensorFlow's atomic writes (file_io.atomic_write_string_to_file
# and the Saver's sharded save) of the files it owns in a model_dir.
TF_TEMP = re.compile(
    rf"^(({re.escape(GRAPH_FILE)}|{re.escape(STATE_FILE)})\.tmp[0-9a-f]{{32}}|"
    rf"{re.escape(CHECKPOINT_BASENAME)}-\d+_temp(_[0-9a-f]{{32}})?)$")
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


def is_disk_full(exc: BaseException | None) -> bool:
  """Whether `exc`, or an exception it was raised from, is "no space left"."""
  seen = set()
  while exc is not None and id(exc) not in seen:
    seen.add(id(exc))
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    if NO_SPACE in str(exc):  # TensorFlow's ResourceExhaustedError.
      return True
    exc = exc.__cause__ or exc.__context__
  return False


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
  """Deletes what TensorFlow's failed atomic writes left in model_dir."""
  removed = []
  for name in sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else ():
    path = os.path.join(model_dir, name)
    if not TF_TEMP.match(name):
      continue
    if os.path.isdir(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      try:
        os.remove(path)
      except OSError:
        continue
    removed.append(name)
  return removed
