"""The one exception type that reaches users as a plain message.

Anything a user can fix (a typo in a flag, a missing data file, a corrupt
checkpoint) is raised as `UserError` with a one-paragraph message that names the
culprit and the fix. `run.py` prints it without a traceback and exits non-zero;
every other exception is a bug and keeps its traceback.
"""


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
