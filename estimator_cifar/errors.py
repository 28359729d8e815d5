"""The one exception type that reaches users as a plain message.

Anything a user can fix (a typo in a flag, a missing data file, a corrupt
checkpoint) is raised as `UserError` with a one-paragraph message that names the
culprit and the fix. `run.py` prints it without a traceback and exits non-zero;
every other exception is a bug and keeps its traceback, except running out of
memory, which `memory_errors_named` turns into `OutOfMemoryError`.
"""

import contextlib
import re

# The config fields that size a run's memory, as an out-of-memory error names
# them: the batch sizes and the network's size.
MEMORY_SETTINGS = ("train.batch_size", "eval.batch_size", "model.depth",
                   "model.width")
# Python's own, and TensorFlow's (matched by name: this module imports no TF).
_OUT_OF_MEMORY_TYPES = ("MemoryError", "ResourceExhaustedError")
_TENSOR_SHAPE = re.compile(r"shape\s*\[(\d+)")


def one_line(e: BaseException) -> str:
  """`Type: first line of its message`, for a log line about a handled error."""
  lines = str(e).splitlines()
  return f"{type(e).__name__}: {lines[0] if lines else ''}"


class UserError(Exception):
  """A problem the user can fix; its message is shown as is, without traceback."""

  exit_code = 2

  def __init__(self, message: str):
    # One paragraph: collapse accidental newlines and runs of spaces.
    super().__init__(" ".join(str(message).split()))


class DataError(UserError):
  """Missing, truncated or inconsistent data files, or a failed download."""


class ConfigError(UserError):
  """An unknown experiment, override key, bad value or invalid combination."""


class CheckpointError(UserError):
  """A missing, corrupt or incompatible checkpoint or model_dir."""


class DiskFullError(UserError):
  """The filesystem of the model_dir (or data_dir) has no room left."""


class OutOfMemoryError(UserError):
  """The host or an accelerator ran out of memory: a setting asks for too much."""


@contextlib.contextmanager
def memory_errors_named(settings: dict[str, object]):
  """Raises `OutOfMemoryError` in place of running out of memory inside.

  Args:
    settings: MEMORY_SETTINGS' keys with the run's values, named in the message.
  """
  try:
    yield
  except UserError:
    raise  # Already explained (a full disk's ResourceExhaustedError, say).
  except Exception as e:  # MemoryError is an Exception too.
    error = out_of_memory(e, settings)
    if error is None:
      raise
    raise error from None


def out_of_memory(e: BaseException,
                  settings: dict[str, object]) -> OutOfMemoryError | None:
  """`e`, or an error it wraps, as an OutOfMemoryError; None if not one.

  The likeliest setting comes first: the batch size that a failed tensor's
  first dimension equals, or the network's depth when Python itself ran out
  (building a huge graph), else the training batch size.
  """
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if any(k.__name__ in _OUT_OF_MEMORY_TYPES for k in type(e).__mro__):
      break
    # `raise ... from None` hides its context: so must this walk.
    e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
  else:
    return None
  lines = [line.strip() for line in str(e).splitlines() if line.strip()]
  what = next((line for line in lines if "OOM" in line), lines[0] if lines else "")
  shape = _TENSOR_SHAPE.search(what)
  likely = next((k for k in MEMORY_SETTINGS if "batch" in k and shape and
                 str(settings.get(k)) == shape.group(1)),
                "model.depth" if isinstance(e, MemoryError) else "train.batch_size")
  order = [likely] + [k for k in MEMORY_SETTINGS if k != likely]
  values = ", ".join(f"{k}={settings[k]}" for k in order if k in settings)
  return OutOfMemoryError(
      f"Out of memory ({type(e).__name__}: {what or 'no details'}). The "
      f"settings that size memory, likeliest first: {values}. Lower "
      f"{likely} with --params_override, or run where more memory is free.")
