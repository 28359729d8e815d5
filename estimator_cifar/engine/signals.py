"""SIGTERM and SIGINT: an orderly stop for every task type; a second one exits.

An orchestrator stopping a job sends SIGTERM to every task, and a user at a
terminal presses Ctrl-C (SIGINT). Each task type stops its own way (training
saves at the current step, an evaluator drops its evaluation, a ps just
leaves), but all share this: the first signal only sets a flag that the task's
loop polls (handlers run in the main thread, between Python bytecodes, so
nothing is interrupted half-way), and a second signal of either kind exits the
process at once, for a user who does not want to wait.

A task whose loop is not polling yet (training while its graph is built, which
takes minutes for a very deep network) asks for `early_action`: until it calls
`polled()`, the first signal raises `Stopped` in the main thread, which ends
the process with 128 + the signal's number. Nothing is lost: that stage
writes no checkpoint.
"""

import os
import signal
import threading
import time

from absl import logging

from estimator_cifar.rundir import run_record

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
POLL_SECS = 0.2  # How often `StopRequest.wait` looks at the flag.


def run_status(signal_name: str) -> str:
  """What run_info.json records for a run a signal ended."""
  return (run_record.INTERRUPTED if signal_name == "SIGINT"
          else run_record.PREEMPTED)


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
    self.signal_name = None

  def __enter__(self) -> "StopRequest":
    if threading.current_thread() is not threading.main_thread():
      logging.warning("Not in the main thread: SIGTERM/SIGINT keep their "
                      "default effect.")
      return self
    for signum in STOP_SIGNALS:
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}

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

