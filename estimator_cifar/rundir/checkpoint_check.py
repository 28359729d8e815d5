"""Pre-flight checks of a train run's model_dir: writable, newest checkpoint whole.

A week of training sits in a model_dir, so a train run checks it before it
starts rather than fail (or, worse, silently start over) inside TensorFlow:

- `check_writable`: the model_dir can be created and written. Run before
  TensorFlow is imported, so a typo in `--model_dir` fails in a second.
- `check_state_file`: the `checkpoint` state file names only checkpoints in
  its own folder. TensorFlow's Saver restores the one it names newest and,
  as it rotates old checkpoints out, deletes the files of the ones it lists:
  a state file from elsewhere naming `/home/me/thesis` or `../other_run/...`
  would make a run read or delete the user's files there.
- `check_links`: no symbolic link in the model_dir leads outside it: runs
  append to, write and delete files through them.
- `check_checkpoints`: the checkpoint named by the `checkpoint` state file is
  complete: its index is there and every tensor reads back with a good
  checksum (TensorFlow's bundle reader checks a CRC32C per tensor). Estimator
  itself would either fail at restore with a DataLossError deep in a session,
  or, with the state file or index gone, log an error and train from step 0,
  overwriting the old checkpoints one by one.

  TensorFlow writes a checkpoint's data and index first and renames them into
  place, and updates the state file last, so a process killed during a write
  leaves the state file naming the previous, complete checkpoint: the rerun
  resumes from it with nothing to do here. What this catches is the rest: a
  file truncated by a full disk, a copy or a crash of the machine (data not yet
  on disk when the state file was), or a hand-edited model_dir. It names the
  damaged checkpoint; `resume_from_previous` (`--resume_from_previous`)
  moves its files aside into `damaged_checkpoints/<time>/` and points the
  state file at the newest complete earlier checkpoint. Nothing is deleted.
- `newest_checkpoint`: the same checks for the modes that read a model_dir
  (eval, export, predict, the Predictor): the newest checkpoint, or one
  message saying why there is none to read.

Imports TensorFlow only inside the functions that read checkpoints.
"""

import glob
import os
import tempfile
import time

from absl import logging

from estimator_cifar import rundir
from estimator_cifar.rundir import disk_space
from estimator_cifar.errors import CheckpointError

FLAG = "--resume_from_previous"
# What TensorFlow's file matching reads as a pattern (`\\` escapes).
GLOB_CHARS = "*?[\\"


def check_writable(model_dir: str) -> None:
  """Creates `model_dir` if needed and checks that a file can be written there.

  Raises:
    CheckpointError: model_dir is a file, or cannot be created or written.
  """
  if os.path.exists(model_dir) and not os.path.isdir(model_dir):
    raise CheckpointError(
        f"--model_dir={model_dir} is a file, not a directory. Pass a directory "
        "path (it is created if missing).")
  try:
    os.makedirs(model_dir, exist_ok=True)
    with tempfile.TemporaryFile(dir=model_dir):
      pass
  except OSError as e:
    raise disk_space.not_writable_error(model_dir, e.strerror or str(e)) \
        from None


def check_state_file(folder: str) -> None:
  """Refuses a `checkpoint` state file in `folder` that names files elsewhere.

  Reads it with TensorFlow's own parser, as the Saver does, so an escaped
  name (`\\056\\056/` is `../`) is seen as TensorFlow sees it. Each name must
  be a file name directly in `folder` (symlinked folders resolved) without
  glob characters: the Saver deletes what a name matches as a pattern.

  Raises:
    CheckpointError: a name points outside `folder`, or the state file names
      no newest checkpoint.
  """
  import tensorflow as tf  # Deferred, as in checkpoint_problem.
  state_path = os.path.join(folder, rundir.STATE_FILE)
  fix = (f"Edit {state_path} so that it names only checkpoints in {folder} "
         "(as model.ckpt-<step>), or use another folder.")
  try:
    state = tf.compat.v1.train.get_checkpoint_state(folder)
  except ValueError:
    raise CheckpointError(f"The checkpoint state file {state_path} names no "
                          f"model_checkpoint_path. {fix}") from None
  if state is None:
    return
  home = os.path.realpath(folder)
  for path in [state.model_checkpoint_path, *state.all_model_checkpoint_paths]:
    name = os.path.basename(path)
    if (os.path.realpath(os.path.dirname(path)) != home or not name or
        any(char in name for char in GLOB_CHARS)):
      raise CheckpointError(
          f"The checkpoint state file {state_path} names {path}, which is not "
          f"a checkpoint in {folder}: TensorFlow would read it and, when it "
          f"rotates old checkpoints out, delete files there. Nothing was "
          f"written. {fix}")


def check_links(model_dir: str) -> None:
  """Refuses a symbolic link in `model_dir` that leads outside it.

  Runs write through links (an appended eval/metrics.jsonl, exports under
  export/) and delete inside them (an older best export), so a link in a
  model_dir from elsewhere would aim those at the user's own files.

  Raises:
    CheckpointError: naming the first such link and where it leads.
  """
  home = os.path.realpath(model_dir)
  for folder, dirs, files in os.walk(model_dir):  # Does not follow links.
    for name in sorted(dirs + files):
      link = os.path.join(folder, name)
      target = os.path.realpath(link)
      if os.path.islink(link) and os.path.commonpath([home, target]) != home:
        raise CheckpointError(
            f"{link} in the model_dir is a symbolic link to {target}: runs "
            "write and delete files through it, outside the model_dir. "
            "Replace the link with a copy of what it points to, or use "
            "another --model_dir.")


def check_contained(model_dir: str) -> None:
  """`check_state_file` and `check_links`: nothing there leads outside it."""
  check_state_file(model_dir)
  check_links(model_dir)


def step_of(prefix: str) -> int:
  """`rundir.checkpoint_step`, with -1 for a name without a step (to sort)."""
  step = rundir.checkpoint_step(prefix)
  return -1 if step is None else step


def checkpoint_problem(prefix: str) -> str | None:
  """What is wrong with the checkpoint `prefix`, or None if it reads back whole.

  Reads every tensor once: the restore right after reads the same bytes, so
  they come from the page cache the second time.
  """
  import tensorflow as tf  # Deferred: check_writable runs before TF loads.
  from estimator_cifar.rundir.identity import error_cause
  # The reader's C++ status reaches Python as an OpError when translated, else
  # as pybind's mapping of it: a truncated data file is an IndexError ("Read
  # less bytes than requested"), other codes RuntimeError or ValueError.
  _READER_ERRORS = (tf.errors.OpError, RuntimeError, IndexError, ValueError)
  name = os.path.basename(prefix)
  if not os.path.exists(prefix + ".index"):
    return f"{name}.index is missing"
  try:
    reader = tf.train.load_checkpoint(prefix)
    for variable in reader.get_variable_to_shape_map():
      reader.get_tensor(variable)
  except _READER_ERRORS as e:
    return f"{name} cannot be read: {error_cause(str(e))}"
  return None


def check_checkpoints(model_dir: str, resume_from_previous: bool = False) -> None:
  """Checks that training can resume from the newest checkpoint in `model_dir`.

  Args:
    model_dir: the run's directory (nothing to check if it has no checkpoint).
    resume_from_previous: the user's `--resume_from_previous`: move a damaged
      newest checkpoint aside and resume from the newest complete one.

  Raises:
    CheckpointError: the newest checkpoint (or the state file naming it) is
      damaged, the message names it and the earlier one the flag would use;
      or the state file or a link leads elsewhere (`check_contained`).
  """
  import tensorflow as tf  # Deferred, as above.
  check_contained(model_dir)
  state_path = os.path.join(model_dir, rundir.STATE_FILE)
  on_disk = sorted((p[:-len(".index")] for p in glob.glob(
      os.path.join(model_dir, rundir.CHECKPOINT_INDEX_GLOB))), key=step_of)
  if not os.path.exists(state_path) and not on_disk:
    return  # A new run.
  state = (tf.compat.v1.train.get_checkpoint_state(model_dir)
           if os.path.exists(state_path) else None)
  newest = state.model_checkpoint_path if state else None
  if newest:
    problem = checkpoint_problem(newest)
    if problem is None:
      return
    culprit = f"The newest checkpoint in {model_dir} is damaged: {problem}"
  elif not on_disk:
    return  # A state file naming nothing: nothing to lose.
  else:
    reason = "unreadable" if os.path.exists(state_path) else "missing"
    culprit = (f"The checkpoint state file {state_path} is {reason}, though "
               f"{model_dir} holds checkpoints up to "
               f"{os.path.basename(on_disk[-1])}; TensorFlow would ignore them "
               "and start over from step 0")
  newest_step = step_of(newest) if newest else float("inf")
  damaged = [newest] if newest else []
  previous = None
  for prefix in reversed([p for p in on_disk if step_of(p) < newest_step]):
    if checkpoint_problem(prefix) is None:
      previous = prefix
      break
    damaged.append(prefix)
  if previous is None:
    raise CheckpointError(
        f"{culprit}. There is no earlier complete checkpoint to resume from. "
        f"Move {model_dir} aside (or pass a new --model_dir) to start over.")
  if not resume_from_previous:
    raise CheckpointError(
        f"{culprit}. Pass {FLAG} to resume from "
        f"{os.path.basename(previous)} (step {step_of(previous)}), the newest "
        f"complete checkpoint: the damaged files are moved into "
        f"{os.path.join(model_dir, rundir.DAMAGED_DIR)}/, nothing is deleted. Or pass "
        "a new --model_dir to start over.")
  _resume_from(model_dir, previous, damaged, state)


def newest_checkpoint(model_dir: str, reader: str) -> str:
  """The newest checkpoint of `model_dir` for `reader` to load, checked whole.

  Args:
    model_dir: the trained run's directory.
    reader: who reads it, as the message names it: a flag (`--mode=eval`)
      for the command line, else a Python name (`Predictor`).

  Raises:
    CheckpointError: no checkpoint, a state file or a link leading elsewhere
      (`check_contained`), or a damaged newest checkpoint.
  """
  import tensorflow as tf  # Deferred, as above.
  check_contained(model_dir)
  newest = tf.train.latest_checkpoint(model_dir)
  if newest is None:
    how = ("(--mode=train_and_eval) or point --model_dir at a trained run"
           if reader.startswith("--") else
           "(estimator_cifar.train) or pass the model_dir of a trained run")
    raise CheckpointError(
        f"{reader} found no checkpoint in {model_dir}. Train first {how}.")
  problem = checkpoint_problem(newest)
  if problem is not None:
    raise CheckpointError(
        f"{reader} cannot read the newest checkpoint in {model_dir}: "
        f"{problem}. A train run there with {FLAG} moves the damaged files "
        f"into {os.path.join(model_dir, rundir.DAMAGED_DIR)}/ (nothing is "
        "deleted) and continues from the newest complete checkpoint; or "
        "point --model_dir at another run.")
  return newest


def _resume_from(model_dir: str, previous: str, damaged: list[str], state) -> None:
  """Moves `damaged` checkpoints aside and points the state file at `previous`."""
  import tensorflow as tf
  target = os.path.join(model_dir, rundir.DAMAGED_DIR, time.strftime("%Y%m%d-%H%M%S"))
  moved = []
  for prefix in damaged:
    for path in glob.glob(glob.escape(prefix) + ".*"):
      os.makedirs(target, exist_ok=True)
      os.replace(path, os.path.join(target, os.path.basename(path)))
      moved.append(os.path.basename(path))
  kept = [p for p in (state.all_model_checkpoint_paths if state else [])
          if step_of(p) < step_of(previous) and os.path.exists(p + ".index")]
  tf.compat.v1.train.update_checkpoint_state(
      model_dir, os.path.basename(previous),
      [os.path.basename(p) for p in kept + [previous]])
  logging.warning("%s: resuming from %s; moved %s into %s.", FLAG,
                  os.path.basename(previous), ", ".join(moved) or "nothing",
                  target)
