"""SIGTERM and SIGINT: an orderly stop for every task type; a second one exits.

An orchestrator stopping a job sends SIGTERM to every task, and a user at a
terminal presses Ctrl-C (SIGINT). Each task type stops its own way (training
saves at the current step, an evaluator drops its evaluation, a ps just
leaves), but all share this: the first signal only sets a flag that the task's
loop polls (handlers run in the main thread, between Python bytecodes, so
nothing is interrupted half-way), and a second signal of either kind exits the
process at once, for a user who does not want to wait.

A task whose loop is not polling yet (training while its graph is built and
its session created, which takes minutes for a deep network) asks for
`early_action`: until it calls `polled()`, the first signal raises `Stopped`
in the main thread, which ends the process with 128 + the signal's number.
Nothing is lost: that stage writes no checkpoint. Python runs handlers only
between bytecodes, so while the main thread is inside one long native call
(TensorFlow optimising and initialising a huge graph) a thread that Python's
C-level handler wakes at once exits the process after EARLY_GRACE_SECS.
"""

import os
import signal
import threading
import time

from absl import logging

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
POLL_SECS = 0.2  # How often `StopRequest.wait` looks at the flag.
# How long an early signal's `Stopped` may take to surface in the main thread
# before the process exits without it.
EARLY_GRACE_SECS = 5.0


def run_status(signal_name: str) -> str:
  """What run_info.json records for a run a signal ended."""
  return "interrupted" if signal_name == "SIGINT" else "preempted"


class Stopped(BaseException):
  """A signal that came before the task's loop polls for it: stop at once.

  A BaseException, as KeyboardInterrupt is, so that no `except Exception` on
  the way out swallows it.

  Attributes:
    signal_name: "SIGTERM" or "SIGINT".
    exit_code: 128 + the signal's number, as if the signal had ended the process.
    run_status: see `run_status`.
  """

  def __init__(self, signal_name: str):
    self.signal_name = signal_name
    self.exit_code = 128 + signal.Signals[signal_name].value
    self.run_status = run_status(signal_name)
    super().__init__(f"{self.run_status} ({signal_name}) before training "
                     "started; no checkpoint was written by this run")


class StopRequest:
  """Context manager: catches SIGTERM/SIGINT while a task runs.

  Attributes:
    signal_name: "SIGTERM" or "SIGINT" once one arrived, else None.
  """

  def __init__(self, action: str, early_action: str | None = None):
    """Logs "SIGTERM: `action`" on a signal, e.g. "saving after the current step".

    With `early_action` (e.g. "stopping now, before training started"), a
    signal before `polled()` raises `Stopped` instead, logged with it.
    """
    self._action = action
    self._early_action = early_action
    self._event = threading.Event()
    self._previous = {}
    self._watch = None
    self.signal_name = None

  def __enter__(self) -> "StopRequest":
    if threading.current_thread() is not threading.main_thread():
      logging.warning("Not in the main thread: SIGTERM/SIGINT keep their "
                      "default effect.")
      return self
    for signum in STOP_SIGNALS:
      self._previous[signum] = signal.signal(signum, self._handle)
    if self._early_action is not None:
      self._watch = _NativeCallWatch(self)
    return self

  def __exit__(self, *exc) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}
    if self._watch is not None:
      self._watch.close()
      self._watch = None

  def _handle(self, signum, frame) -> None:
    del frame
    name = signal.Signals(signum).name
    if self._event.is_set():
      logging.warning("%s again: exiting now without %s.", name, self._action)
      logging.flush()
      os._exit(128 + signum)  # pylint: disable=protected-access
    self.signal_name = name
    self._event.set()
    if self._early_action is not None:
      logging.warning("%s: %s.", name, self._early_action)
      raise Stopped(name)
    logging.warning("%s: %s (send it again to exit at once).", name,
                    self._action)

  def polled(self) -> None:
    """The task's loop now polls `requested`: a first signal only sets it."""
    self._early_action = None

  @property
  def early(self) -> bool:
    """Whether a first signal still raises `Stopped` (before `polled()`)."""
    return self._early_action is not None

  @property
  def requested(self) -> bool:
    return self._event.is_set()

  def request(self, name: str = "request") -> None:
    """Asks for the stop without a signal (tests, callers that own the loop)."""
    self.signal_name = self.signal_name or name
    self._event.set()

  def wait(self, seconds: float) -> bool:
    """Sleeps up to `seconds`, returning early (True) once a stop is requested.

    Polls rather than blocking on the Event: a handler that sets an Event the
    main thread is waiting on can deadlock on the Event's internal lock.
    """
    deadline = time.monotonic() + max(0.0, seconds)
    while not self._event.is_set():
      left = deadline - time.monotonic()
      if left <= 0:
        return False
      time.sleep(min(POLL_SECS, left))
    return True


class _NativeCallWatch:
  """Exits the process when an early signal's `Stopped` cannot surface.

  Python's C-level handler writes each signal's number to the wakeup fd at
  once, whatever the main thread is doing; this thread reads it and, if the
  StopRequest is still early and still entered EARLY_GRACE_SECS later (the
  main thread is stuck in native code), exits with 128 + the number.
  """

  def __init__(self, stop: StopRequest):
    self._stop = stop
    self._closed = threading.Event()
    read_fd, self._write_fd = os.pipe()
    os.set_blocking(self._write_fd, False)  # As set_wakeup_fd requires.
    self._previous_fd = signal.set_wakeup_fd(self._write_fd)
    threading.Thread(target=self._watch, args=(read_fd,), daemon=True,
                     name="native-call-watch").start()

  def close(self) -> None:
    self._closed.set()
    signal.set_wakeup_fd(self._previous_fd)
    os.close(self._write_fd)  # The reader sees end-of-file and returns.

  def _watch(self, read_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as reader:
      while number := reader.read(1):
        if number[0] not in STOP_SIGNALS or not self._stop.early or \
            self._closed.wait(EARLY_GRACE_SECS):
          continue
        if self._stop.early:  # polled() may have come while we waited.
          logging.warning("%s: still in a native call after %.0f s; exiting "
                          "now.", signal.Signals(number[0]).name,
                          EARLY_GRACE_SECS)
          logging.flush()
          os._exit(128 + number[0])  # pylint: disable=protected-access
