"""A parameter-server worker that loses a step to another task's fault rejoins.

MonitoredSession makes a new session after an AbortedError or an
UnavailableError, but a CancelledError escapes it: the error a worker's step
gets when the ps rejects the step's retried RunGraph ("The same RunGraph
(Worker) request was received twice") after the chief died under it. The
variables live on the ps and the chief saves the checkpoints, so such a worker
can train on from where the cluster is, as a restarted worker would, instead
of exiting 1 and waiting for an orchestrator to restart it.
"""

import time
from typing import Callable

import tensorflow as tf
from absl import logging

from estimator_cifar import errors
from estimator_cifar.engine import distribute
from estimator_cifar.rundir import job_end

# What a worker's step raises when another task of the cluster dies under it.
LOST_STEP_ERRORS = (tf.errors.CancelledError, tf.errors.AbortedError,
                    tf.errors.UnavailableError)
MAX_REJOINS = 10  # In one process; more is no passing fault.
PAUSE_SECS = 1.0  # Between a lost step and the new session.


def run(body: Callable[[], dict], cluster: distribute.Cluster | None,
        model_dir: str, max_rejoins: int = MAX_REJOINS,
        pause_secs: float = PAUSE_SECS) -> dict:
  """`body()`, run again on a ps cluster's worker after a lost step.

  Only while the chief's run goes on: once it has ended there is no job to
  rejoin (its ps tasks may be gone), and the error is raised as before.
  """
  if cluster is None or not cluster.has_ps or cluster.task_type != "worker":
    return body()
  watch = job_end.ChiefWatch(model_dir)
  rejoins = 0
  while True:
    try:
      return body()
    except LOST_STEP_ERRORS as e:
      if rejoins == max_rejoins or watch.ended() is not None:
        raise
      rejoins += 1
      logging.warning(
          "worker:%d lost a step to another task's fault (%s); rejoining the "
          "cluster (%d of at most %d).", cluster.task_index, errors.one_line(e),
          rejoins, max_rejoins)
      time.sleep(pause_secs)
