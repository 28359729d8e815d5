"""A parameter-server task: serve the variables until the job ends, then exit 0.

Estimator's own ps task starts a `tf.distribute.Server` and joins it forever,
so a launcher or an orchestrator never sees the job finish, and a SIGTERM
handler installed for training would make it ignore SIGTERM for good. This
task starts the same server and then polls:

  - the chief's run record (rundir/job_end.py): once the chief's run has
    ended, it waits for every worker's done mark (a worker still in its last
    step needs its ps) up to WORKER_GRACE_SECS, then returns;
  - SIGTERM / SIGINT (engine/signals.py): returns at once; a second signal
    exits at once.

The process then exits 0 (run.py); the server's threads end with it.
"""

import time

import tensorflow as tf
from absl import logging

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.engine import distribute, signals
from estimator_cifar.engine.estimator_setup import session_config
from estimator_cifar.rundir import job_end

POLL_SECS = 1.0
WORKER_GRACE_SECS = 30.0  # After the chief ended, at most this for workers.


def run(cfg: ExperimentConfig, model_dir: str,
        cluster: distribute.Cluster) -> dict:
  """Serves as `ps:<index>` of `cluster` until the job ends or a signal."""
  jobs = {role: hosts for role, hosts in cluster.jobs.items()
          if role != "evaluator"}  # The evaluator is no member of the graph.
  proto = distribute.adjust_session_config(cfg, session_config(cfg), cluster)
  watch = job_end.ChiefWatch(model_dir)  # Before the chief can finish.
  with signals.StopRequest("stopping the parameter server") as stop:
    server = tf.distribute.Server(tf.train.ClusterSpec(jobs), job_name="ps",
                                  task_index=cluster.task_index, config=proto,
                                  start=True)
    logging.info("Parameter server ps:%d serving at %s; it stops when the "
                 "chief's run in %s has ended.", cluster.task_index,
                 server.target, model_dir)
    chief_end = _wait_for_chief(watch, stop)
    if chief_end is not None:
      _wait_for_workers(model_dir, cluster, chief_end, stop)
  if stop.requested:
    logging.info("Parameter server ps:%d stopped on %s.", cluster.task_index,
                 stop.signal_name)
  else:
    logging.info("Parameter server ps:%d done: the chief's run ended (%s).",
                 cluster.task_index, chief_end.get("status"))
  return {}


def _wait_for_chief(watch: job_end.ChiefWatch,
                    stop: signals.StopRequest) -> dict | None:
  while not stop.wait(POLL_SECS):
    record = watch.ended()
    if record is not None:
      return record
  return None


def _wait_for_workers(model_dir: str, cluster: distribute.Cluster,
                      chief_end: dict, stop: signals.StopRequest) -> None:
  workers = range(len(cluster.jobs.get("worker", [])))
  started = chief_end.get("start_time")
  deadline = time.monotonic() + WORKER_GRACE_SECS
  while True:
    left = [i for i in workers
            if not job_end.is_done(model_dir, "worker", i, started)]
    if not left:
      return
    if time.monotonic() > deadline:
      logging.warning("Workers %s did not mark their end %.0fs after the "
                      "chief's; stopping the parameter server anyway.", left,
                      WORKER_GRACE_SECS)
      return
    if stop.wait(POLL_SECS):
      return
