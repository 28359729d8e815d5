"""A ps cluster's worker trains on after a step lost to another task's fault."""

import json

import pytest
import tensorflow as tf
from absl import logging

from estimator_cifar.engine import rejoin
from estimator_cifar.engine.distribute import Cluster

JOBS = {"chief": ["localhost:1"], "worker": ["localhost:2"], "ps": ["localhost:3"]}
WORKER = Cluster(JOBS, "worker", 0)
# What the worker's step raised when the chief was SIGKILLed under it.
RETRIED = tf.errors.CancelledError(
    None, None, "RunGraph cancelled\nABORTED: The same RunGraph (Worker) "
    "request was received twice.")


class FailingBody:
  """Raises each of `errors` in turn, then returns `result`; counts calls."""

  def __init__(self, errors, result=None, before_raise=None):
    self.errors, self.result, self.calls = list(errors), result or {}, 0
    self.before_raise = before_raise

  def __call__(self):
    self.calls += 1
    if self.errors:
      if self.before_raise:
        self.before_raise()
      raise self.errors.pop(0)
    return self.result


def test_worker_rejoins_after_lost_steps(tmp_path, monkeypatch):
  warnings = []
  monkeypatch.setattr(logging, "warning", lambda msg, *a: warnings.append(msg % a))
  lost = [RETRIED, tf.errors.AbortedError(None, None, "aborted"),
          tf.errors.UnavailableError(None, None, "ps restarting")]
  body = FailingBody(lost, {"done": 1})
  assert rejoin.run(body, WORKER, str(tmp_path), pause_secs=0) == {"done": 1}
  assert body.calls == 4
  assert len(warnings) == 3
  assert warnings[0].startswith(
      "worker:0 lost a step to another task's fault (CancelledError: RunGraph "
      "cancelled); rejoining the cluster (1 of at most 10).")


@pytest.mark.parametrize("cluster", [None, Cluster(JOBS, "chief", 0),
                                     Cluster({"worker": ["localhost:2"],
                                              "chief": ["localhost:1"]},
                                             "worker", 0)],
                         ids=["local", "chief", "worker_without_ps"])
def test_only_a_ps_clusters_worker_rejoins(tmp_path, cluster):
  body = FailingBody([RETRIED])
  with pytest.raises(tf.errors.CancelledError):
    rejoin.run(body, cluster, str(tmp_path), pause_secs=0)
  assert body.calls == 1


def test_other_errors_are_not_retried(tmp_path):
  body = FailingBody([tf.errors.InvalidArgumentError(None, None, "bad")])
  with pytest.raises(tf.errors.InvalidArgumentError):
    rejoin.run(body, WORKER, str(tmp_path), pause_secs=0)
  assert body.calls == 1


def test_gives_up_after_max_rejoins(tmp_path):
  body = FailingBody([RETRIED] * 4)
  with pytest.raises(tf.errors.CancelledError):
    rejoin.run(body, WORKER, str(tmp_path), max_rejoins=3, pause_secs=0)
  assert body.calls == 4


def test_no_rejoin_once_the_chiefs_run_has_ended(tmp_path):
  # An ended record already there at start is an earlier run's: rejoin then.
  record = tmp_path / "run_info.json"
  record.write_text(json.dumps({"status": "finished", "start_time": 1.0}))
  body = FailingBody([RETRIED], {"done": 1})
  assert rejoin.run(body, WORKER, str(tmp_path), pause_secs=0) == {"done": 1}
  # This run's chief finishes while the worker's last step is lost: the ps
  # tasks may be gone, so the error stands instead of a session that waits.
  finish = lambda: record.write_text(
      json.dumps({"status": "finished", "start_time": 2.0}))
  body = FailingBody([RETRIED], before_raise=finish)
  with pytest.raises(tf.errors.CancelledError):
    rejoin.run(body, WORKER, str(tmp_path), pause_secs=0)
  assert body.calls == 1
