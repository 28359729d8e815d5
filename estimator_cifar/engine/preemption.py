"""SIGTERM or Ctrl-C: save a checkpoint at the current step and stop cleanly.

Preemptible and shared machines announce the end with SIGTERM and follow with
SIGKILL after a grace period (often 30 s). Python's default for SIGTERM is to
die at once, and for SIGINT to raise KeyboardInterrupt inside `session.run`,
both losing every step since the last periodic checkpoint.

`PreemptionHook` catches both through `signals.StopRequest`, whose handler only
sets a flag (a second signal exits at once). After the step in flight, the
hook saves a checkpoint at the current step with the Estimator's own Saver (the
one the CheckpointSaverHook uses, so `keep_max` bookkeeping stays right) and
raises `Preempted`. It saves itself rather than `request_stop()`: a stopped
train_and_evaluate runs a final evaluation before it returns, which can take
longer than the grace period. `modes.run` catches `Preempted`, records the
run as "preempted" (SIGTERM) or "interrupted" (SIGINT) and returns normally,
so the process exits 0 within about one step and a checkpoint write; the same
command resumes from that step.

Until the training graph is built (the data, the input pipeline, model_fn:
minutes for a very deep network) there is no step to finish: the first signal
then raises `signals.Stopped` at once, the run is recorded as preempted or
interrupted, and the process exits 128 + the signal's number. Checkpoints
written before are untouched. From the hooks' `begin()` on (session creation,
the step-0 save, the steps) it is the orderly stop above.

Only the chief of a TF_CONFIG cluster saves (it owns the model_dir); other
tasks just stop.
"""

import os

import tensorflow as tf

from estimator_cifar.engine import signals
from estimator_cifar.rundir import CHECKPOINT_BASENAME

v1 = tf.compat.v1


class Preempted(Exception):
  """Training stopped on SIGTERM or SIGINT after saving a checkpoint at `step`."""

  def __init__(self, step: int, checkpoint: str | None,
               signal_name: str = "SIGTERM"):
    self.step, self.checkpoint = step, checkpoint
    self.signal_name = signal_name
    # What run_info records for a run ended this way.
    self.run_status = signals.run_status(signal_name)
    saved = f"saved {checkpoint}" if checkpoint else "no checkpoint saved here"
    super().__init__(f"{self.run_status} ({signal_name}) at step {step}; {saved}")


class PreemptionHook(v1.train.SessionRunHook):
  """Turns SIGTERM/SIGINT into a checkpoint at the current step and `Preempted`.

  Use as a context manager around training, so the previous handlers are
  restored however training ends.
  """

  def __init__(self, model_dir: str):
    self._model_dir = model_dir
    self._stop = signals.StopRequest(
        "saving a checkpoint after the current step",
        early_action="stopping now, before training started")
    self._saver = None
    self._global_step = None
    self._is_chief = tf.estimator.RunConfig().is_chief  # From TF_CONFIG.

  def __enter__(self) -> "PreemptionHook":
    self._stop.__enter__()
    return self

  def __exit__(self, *exc) -> None:
    self._stop.__exit__(*exc)

  @property
  def requested(self) -> bool:
    return self._stop.requested

  def begin(self):
    self._global_step = v1.train.get_global_step()
    # The graph is built: from here the first signal waits for after_run, so
    # that a step-0 save or a restore in progress is never cut off.
    self._stop.polled()

  def after_create_session(self, session, coord):
    del session, coord
    # The Scaffold's Saver, in the SAVERS collection once the graph is final.
    savers = v1.get_collection(v1.GraphKeys.SAVERS)
    self._saver = savers[0] if savers else None

  def after_run(self, run_context, run_values):
    del run_values
    if not self._stop.requested:
      return
    session = run_context.session
    step = int(session.run(self._global_step))
    checkpoint = None
    if self._is_chief and self._saver is not None:
      prefix = os.path.join(self._model_dir, CHECKPOINT_BASENAME)
      checkpoint = f"{prefix}-{step}"
      if tf.train.latest_checkpoint(self._model_dir) != checkpoint:
        checkpoint = self._saver.save(session, prefix, global_step=step)
    raise Preempted(step, checkpoint, self._stop.signal_name)
