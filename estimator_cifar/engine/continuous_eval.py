"""`--mode=continuous_eval`: evaluate a training run's checkpoints as they land.

The job watches a model_dir, possibly from another machine over a shared
filesystem, with `tf.train.checkpoints_iterator`, and evaluates every new
checkpoint it sees exactly once: each result is appended to
`<model_dir>/eval/metrics.jsonl` and written as eval summaries (Estimator's
`evaluate` writes `<model_dir>/eval/events.*` for TensorBoard). It stops by
itself after the checkpoint at the run's final step, or after
`eval.timeout_secs` with no new checkpoint.

Restarted, it reads metrics.jsonl and skips checkpoints evaluated before. A
checkpoint that the trainer deletes (keep_max) between being listed and being
loaded is skipped with a log line. With `ema.eval_with_ema` the model_fn's EVAL
Scaffold restores the averaged weights, so this job evaluates those.
"""

import os
from typing import Iterable

import tensorflow as tf
from absl import logging

from estimator_cifar.rundir import checkpoint_step, metrics_log


def evaluated_checkpoints(model_dir: str) -> set[str]:
  """Basenames of the checkpoints metrics.jsonl already has a row for."""
  return {row["checkpoint"] for row in metrics_log.read(model_dir)
          if row.get("checkpoint")}


def _vanished(checkpoint: str) -> bool:
  return not tf.io.gfile.exists(checkpoint + ".index")


def evaluate_checkpoints(estimator: tf.estimator.Estimator, input_fn,
                         checkpoints: Iterable[str], max_steps: int) -> dict:
  """Evaluates each checkpoint of `checkpoints` not yet in metrics.jsonl.

  Separate from `run` so that tests can feed a list with a deleted checkpoint
  in it instead of waiting on a live trainer.

  Args:
    estimator: evaluates; its model_dir holds metrics.jsonl.
    input_fn: the eval input_fn.
    checkpoints: checkpoint paths, in the order they appeared.
    max_steps: the run's final step; reaching it ends the loop.

  Returns:
    The metrics of the last checkpoint evaluated here ({} if none).
  """
  model_dir = estimator.model_dir
  done = evaluated_checkpoints(model_dir)
  last = {}
  for checkpoint in checkpoints:
    name = os.path.basename(checkpoint)
    step = checkpoint_step(name)
    if name in done:
      logging.info("Checkpoint %s is in %s already; not evaluating it again.",
                   name, metrics_log.path(model_dir))
    else:
      try:
        result = estimator.evaluate(input_fn, checkpoint_path=checkpoint)
      except (tf.errors.NotFoundError, tf.errors.DataLossError,
              tf.errors.FailedPreconditionError, ValueError) as e:
        # The trainer's Saver deletes old checkpoints (checkpoint.keep_max);
        # one listed a moment ago may be gone by the time it is restored.
        if not _vanished(checkpoint) and isinstance(e, ValueError):
          raise
        logging.warning("Checkpoint %s disappeared before it could be loaded "
                        "(%s: %s); skipping it.", name, type(e).__name__,
                        str(e).splitlines()[0] if str(e) else "")
        continue
      row = metrics_log.append(model_dir, result, checkpoint)
      done.add(name)
      step = row["global_step"]
      last = result
      logging.info("Continuous eval of %s (step %d): %s", name, step,
                   " ".join(f"{k}={float(result[k]):.4f}" for k in
                            ("accuracy", "top_5_accuracy", "loss") if k in result))
    if step is not None and step >= max_steps:
      logging.info("Evaluated the final step %d of %d; continuous eval done.",
                   step, max_steps)
      break
  return last


def run(estimator: tf.estimator.Estimator, input_fn, model_dir: str,
        max_steps: int, timeout_secs: float) -> dict:
  """Watches `model_dir` until its final checkpoint or `timeout_secs` idle.

  Returns:
    The metrics of the last checkpoint evaluated by this job ({} if none).
  """
  logging.info("Continuous eval of %s: waiting for checkpoints up to step %d "
               "(gives up after %ss without a new one).", model_dir, max_steps,
               timeout_secs)
  checkpoints = tf.train.checkpoints_iterator(model_dir, timeout=timeout_secs)
  result = evaluate_checkpoints(estimator, input_fn, checkpoints, max_steps)
  latest = tf.train.latest_checkpoint(model_dir)
  final = checkpoint_step(latest)
  if final is None or final < max_steps:
    logging.info("No new checkpoint for %ss (latest: %s); stopping before the "
                 "final step %d.", timeout_secs, latest, max_steps)
  return result
