"""What reaches the terminal: the package's own lines, not TensorFlow's chatter.

TensorFlow's Python logger (`tensorflow`) reports every model_fn call, session
step and SavedModel detail at INFO, and a deprecation warning for each
Estimator API the package uses on purpose (it pins TF 2.15 for tf.estimator).
`quiet()` keeps the package's lines and TensorFlow's other warnings and
errors; `--verbose` (CLI) or not calling it (API) shows everything.
"""

import contextlib
import logging
import os
import sys
import tempfile

TF_LOGGER = "tensorflow"


class _TensorFlowChatter(logging.Filter):
  """Drops TensorFlow's INFO lines and its deprecation warnings."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.name != TF_LOGGER:
      return True
    if record.levelno < logging.WARNING:
      return False
    return not record.pathname.endswith("deprecation.py")


_FILTER = _TensorFlowChatter()


def quiet() -> None:
  """Hides TensorFlow's INFO lines and deprecation warnings from now on."""
  logger = logging.getLogger(TF_LOGGER)
  if _FILTER not in logger.filters:
    logger.addFilter(_FILTER)


@contextlib.contextmanager
def native_stderr_hidden():
  """Once quiet() was called, hides what C++ code writes to stderr inside the
  block (the TFLite converter's op summary); shown if the block raises."""
  if _FILTER not in logging.getLogger(TF_LOGGER).filters:
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as sink:
    os.dup2(sink.fileno(), 2)
    try:
      yield
    except BaseException:
      os.dup2(saved, 2)
      sink.seek(0)
      os.write(2, sink.read())
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)
