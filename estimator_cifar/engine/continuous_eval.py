"""Evaluating a training run's checkpoints as they land.

Serves `--mode=continuous_eval` and the `evaluator` task of a TF_CONFIG
cluster alike, in place of Estimator's evaluator loop (which sleeps a whole
`throttle_secs` after finding no checkpoint). The loop polls the model_dir
every POLL_SECS, possibly from another machine over a shared filesystem, and
evaluates the newest checkpoint it has not evaluated yet:

  - `eval.throttle_secs` is the least time between the starts of two
    evaluations; it never delays the first one, nor the final checkpoint
    (step >= the run's last step);
  - after evaluating a checkpoint at or past the last step it ends, once the
    chief's run record says the run ended at that step, or FINAL_GRACE_SECS
    pass without a newer checkpoint (asynchronous workers overshoot, and the
    chief saves again when it stops);
  - each result is appended to `<model_dir>/eval/metrics.jsonl` and written as
    eval summaries (`<model_dir>/eval/events.*`); a cluster's evaluator also
    runs the SavedModel exporters;
  - it also ends when the chief's run record says the run ended (a NaN stop
    short of the last step) and the newest checkpoint is evaluated, or after
    `eval.timeout_secs` with no new checkpoint (`--mode=continuous_eval`
    only: a cluster's evaluator waits for the chief, as Estimator's did);
  - SIGTERM / SIGINT abandon the evaluation in progress (nothing is logged
    for it) and end the loop; a second signal exits at once.

Restarted, it reads metrics.jsonl and skips checkpoints evaluated before. A
checkpoint that the trainer deletes (keep_max) between being listed and being
loaded is skipped with a log line. With `ema.eval_with_ema` the model_fn's EVAL
Scaffold restores the averaged weights, so this job evaluates those.
"""

import glob
import os
import time
from typing import Sequence

import tensorflow as tf
from absl import logging

from estimator_cifar import errors
from estimator_cifar.engine import signals
from estimator_cifar.rundir import (checkpoint_check, checkpoint_step, job_end,
                                    metrics_log)

POLL_SECS = 1.0  # How often the model_dir is looked at for a new checkpoint.
# After evaluating a checkpoint at the last step: how long to wait for a later
# one when the chief's run record does not say the run ended there.
FINAL_GRACE_SECS = 30.0


def evaluated_checkpoints(model_dir: str,
                          split: str = metrics_log.TEST) -> set[str]:
  """Basenames of the checkpoints metrics.jsonl has a row of `split` for."""
  return {row["checkpoint"] for row in metrics_log.rows_of(model_dir, split)
          if isinstance(row.get("checkpoint"), str)}


def _vanished(checkpoint: str) -> bool:
  """Whether the checkpoint's index or data files are gone (retention)."""
  return not (tf.io.gfile.exists(checkpoint + ".index") and
              tf.io.gfile.glob(glob.escape(checkpoint) + ".data-*"))


class Abandoned(Exception):
  """An evaluation given up on a stop request."""


class _AbandonOnStop(tf.compat.v1.train.SessionRunHook):
  """Raises `Abandoned` after the eval batch in flight once a stop is asked.

  An exception rather than request_stop(): a stopped evaluation would still
  return (and log) metrics of a part of the eval set.
  """

  def __init__(self, stop: signals.StopRequest):
    self._stop = stop

  def before_run(self, run_context):
    del run_context
    if self._stop.requested:
      raise Abandoned()


def evaluate_one(estimator: tf.estimator.Estimator, input_fn, checkpoint: str,
                 stop: signals.StopRequest | None = None,
                 exporters: Sequence[tf.estimator.Exporter] = (),
                 final: bool = False, split: str = metrics_log.TEST
                 ) -> dict | None:
  """Evaluates `checkpoint` (of `split`: the input_fn's), logs it to
  metrics.jsonl and runs `exporters`.

  Returns:
    The metrics, or None when the checkpoint vanished before it was loaded
    (retention) or the evaluation was abandoned on `stop`.
  """
  name = os.path.basename(checkpoint)
  hooks = [_AbandonOnStop(stop)] if stop is not None else []
  try:
    result = estimator.evaluate(input_fn, checkpoint_path=checkpoint,
                                hooks=hooks)
  except Abandoned:
    logging.info("Abandoned the evaluation of %s on %s.", name,
                 stop.signal_name)
    return None
  except (tf.errors.NotFoundError, tf.errors.DataLossError,
          tf.errors.OutOfRangeError, tf.errors.FailedPreconditionError,
          ValueError) as e:
    # The trainer's Saver deletes old checkpoints (checkpoint.keep_max);
    # one listed a moment ago may be gone by the time it is restored.
    if _vanished(checkpoint):
      logging.warning("Checkpoint %s disappeared before it could be loaded "
                      "(%s); skipping it.", name, errors.one_line(e))
      return None
    if isinstance(e, ValueError):
      raise
    # Damaged (truncated, bad checksum): the loop goes on to the next one.
    logging.warning("Checkpoint %s cannot be read (%s); skipping it.", name,
                    checkpoint_check.checkpoint_problem(checkpoint) or
                    errors.one_line(e))
    return None
  model_dir = estimator.model_dir
  row = metrics_log.append(model_dir, result, checkpoint, split)
  logging.info("Eval of %s (step %d) on the %s split: %s", name,
               row["global_step"], split,
               " ".join(f"{k}={float(result[k]):.4f}" for k in
                        ("accuracy", "top_5_accuracy", "loss") if k in result))
  for exporter in exporters:  # Where Estimator's evaluator puts them.
    exporter.export(estimator, os.path.join(model_dir, "export", exporter.name),
                    checkpoint, result, final)
  return result


def run(estimator: tf.estimator.Estimator, input_fn, model_dir: str,
        max_steps: int, timeout_secs: float, throttle_secs: float = 0,
        exporters: Sequence[tf.estimator.Exporter] = (),
        start_delay_secs: float = 0, split: str = metrics_log.TEST) -> dict:
  """Evaluates `model_dir`'s checkpoints until its final one (module docstring).

  `split`: the split `input_fn` reads, as its rows name it.

  Returns:
    The metrics of the last checkpoint evaluated by this job ({} if none).
  """
  ends = (f"gives up after {timeout_secs}s without a new checkpoint"
          if timeout_secs != float("inf") else
          "also stops once the chief's run has ended")
  logging.info("Evaluating checkpoints of %s as they land, up to step %d "
               "(at most one evaluation every %ss; %s).", model_dir, max_steps,
               throttle_secs, ends)
  checkpoint_check.check_contained(model_dir)
  watch = job_end.ChiefWatch(model_dir)
  done = evaluated_checkpoints(model_dir, split)
  skipped = set()  # Vanished before they loaded: never tried again.
  last, last_start = {}, None
  seen, seen_at = None, time.monotonic()
  with signals.StopRequest("abandoning the evaluation and exiting") as stop:
    stop.wait(start_delay_secs)
    while not stop.requested:
      latest = tf.train.latest_checkpoint(model_dir)
      if latest != seen:
        seen, seen_at = latest, time.monotonic()
      name = os.path.basename(latest) if latest else None
      step = checkpoint_step(name)
      final = step is not None and step >= max_steps
      # A checkpoint at max_steps may not be the last (module docstring).
      if name in done and final and (
          job_end.ended_at_step(model_dir) == step or
          time.monotonic() - seen_at > FINAL_GRACE_SECS):
        logging.info("Evaluated the final step %d of %d; done.", step, max_steps)
        break
      wait = 0.0 if final or last_start is None else \
          last_start + throttle_secs - time.monotonic()
      if name is not None and name not in done | skipped and wait <= 0:
        last_start = time.monotonic()
        result = evaluate_one(estimator, input_fn, latest, stop, exporters,
                              final, split)
        if result is not None:
          done.add(name)
          last = result
        elif not stop.requested:
          skipped.add(name)
        continue
      if (latest is None or name in done | skipped) and \
          watch.ended() is not None:
        logging.info("The chief's run ended at %s; nothing left to evaluate.",
                     name)
        break
      if time.monotonic() - seen_at > timeout_secs:
        logging.info("No new checkpoint for %ss (latest: %s); stopping before "
                     "the final step %d.", timeout_secs, latest, max_steps)
        break
      stop.wait(POLL_SECS if wait <= 0 else min(POLL_SECS, wait))
  return last
