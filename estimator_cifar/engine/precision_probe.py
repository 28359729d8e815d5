"""Times a few training steps of an experiment's network in each precision.

The probe behind `train.precision=auto` (precision.py): the experiment's own
model_fn at its configured batch size and crop (`data.image_size`), on
synthetic images held in memory (no input pipeline), one graph and session per
precision, then alternating trials of a few steps each so that a neighbour's
burst hits every precision alike.
"""

import dataclasses
import statistics
import time

import numpy as np

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import cifar

WARMUP_STEPS = 2      # Untimed steps per precision: graph rewrites, allocation.
TRIAL_STEPS = 5       # Timed steps per trial.
TRIALS = 3            # Alternating trials per precision; the median counts.
TIME_CAP_S = 20.0     # No new round of trials starts after this many seconds.
# The classifier head is a negligible share of a step: any class count will do.
PROBE_CLASSES = 10


@dataclasses.dataclass
class ProbeResult:
  """Median steps/s per precision that ran, and why any other failed."""
  steps_per_sec: dict[str, float]
  failures: dict[str, str]
  trials: int           # Completed trials per precision (<= TRIALS).
  steps: int = TRIAL_STEPS


def probe(cfg: ExperimentConfig, precisions: list[str],
          trials: int = TRIALS, steps: int = TRIAL_STEPS,
          time_cap_s: float = TIME_CAP_S) -> ProbeResult:
  """Median steps/s of `cfg`'s training step in each of `precisions`.

  Args:
    cfg: the experiment; its network, batch size and optimizer are timed.
    precisions: concrete precisions, float32 first (its failure is raised:
      it is the fallback, so a failure there is a real error).
    trials: alternating trials per precision.
    steps: timed steps per trial.
    time_cap_s: no new round starts after this many seconds (at least one).

  Returns:
    The medians, and for each other precision that raised a TensorFlow error
    (e.g. an op without a kernel for its dtype) the error's first line.
  """
  import tensorflow as tf
  runners, failures = {}, {}
  try:
    for precision in precisions:
      try:
        runners[precision] = _StepRunner(cfg, precision)
      except (tf.errors.OpError, ValueError, TypeError) as e:
        if precision == precisions[0]:
          raise
        failures[precision] = _first_line(e)
    times = {precision: [] for precision in runners}
    start = time.monotonic()
    for trial in range(trials):
      if trial and time.monotonic() - start >= time_cap_s:
        break
      for precision in list(runners):
        try:
          times[precision].append(runners[precision].time(steps))
        except tf.errors.OpError as e:
          if precision == precisions[0]:
            raise
          failures[precision] = _first_line(e)
          runners.pop(precision).close()
          times.pop(precision)
  finally:
    for runner in runners.values():
      runner.close()
  return ProbeResult(
      {p: steps / statistics.median(seconds) for p, seconds in times.items()},
      failures, len(times[precisions[0]]), steps)


class _StepRunner:
  """One precision's training step in its own graph and session, warmed up."""

  def __init__(self, cfg: ExperimentConfig, precision: str):
    import tensorflow as tf
    from estimator_cifar.engine.estimator_setup import session_config
    from estimator_cifar.engine.precision import with_precision
    from estimator_cifar.model.model_fn import ModelParams, model_fn
    v1 = tf.compat.v1
    cfg = with_precision(cfg, precision)
    batch, side = cfg.train.batch_size, cfg.data.image_size
    channels = cifar.DATASETS[cfg.data.name].channels
    rng = np.random.default_rng(0)
    self._graph = tf.Graph()
    with self._graph.as_default():
      images = tf.constant(rng.random((batch, side, side, channels),
                                      np.float32))
      labels = tf.constant(rng.integers(0, PROBE_CLASSES, batch, np.int32))
      spec = model_fn(images, labels, tf.estimator.ModeKeys.TRAIN,
                      ModelParams(cfg, PROBE_CLASSES))
      self._train_op = spec.train_op
      init = [v1.global_variables_initializer(), v1.local_variables_initializer()]
      self._session = v1.Session(graph=self._graph, config=session_config(cfg))
    try:
      self._session.run(init)
      for _ in range(WARMUP_STEPS):
        self._session.run(self._train_op)
    except BaseException:
      self.close()
      raise

  def time(self, steps: int) -> float:
    """Seconds that `steps` training steps take."""
    start = time.perf_counter()
    for _ in range(steps):
      self._session.run(self._train_op)
    return time.perf_counter() - start

  def close(self) -> None:
    self._session.close()


def _first_line(error: BaseException) -> str:
  """An error's first line, where TensorFlow's reason usually stands."""
  text = str(getattr(error, "message", "") or error).strip()
  return text.splitlines()[0] if text else type(error).__name__
