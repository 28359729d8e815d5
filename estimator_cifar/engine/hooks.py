"""What a training run says while it runs: progress lines, divergence stops.

- `ProgressHook`: every `log.every_steps` steps one absl line with step, loss,
  learning rate, examples/sec, sec/batch and the ETA to the final step; it also
  writes `global_step/sec` and `examples/sec` to TensorBoard. It replaces
  Estimator's `loss = ..., step = ...` and `global_step/sec: ...` lines, which
  engine.modes turns off (RunConfig.log_step_count_steps=None).
- `NanGuardHook`: a NaN or Inf loss stops training with TrainingDivergedError
  naming the step and the last good checkpoint.
- `FiniteCheckpointGuard`: a CheckpointSaverListener that refuses to write a
  checkpoint whose variables (weights, optimizer slots, loss averages) are not
  all finite. Estimator's CheckpointSaverHook runs before any hook of ours in
  the same step, and also saves in end() when training finishes, so the loss
  check alone could not keep a diverged state off the disk.
- `HistogramSaverHook`: writes summaries.HISTOGRAMS every
  `summary.histogram_steps` (0: every `summary.save_steps`).

Periodic hooks fetch only on the steps they are due: Session.run gets no extra
fetch from them otherwise. `train_hooks` and `saving_listeners` are what
engine.modes passes to TrainSpec / Estimator.train.
"""

import datetime
import time

import numpy as np
import tensorflow as tf
from absl import logging

from estimator_cifar import rundir
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.errors import UserError
from estimator_cifar.model import summaries

v1 = tf.compat.v1


class TrainingDivergedError(UserError):
  """The loss or a variable became NaN or Inf; training stopped before saving it."""


def train_hooks(cfg: ExperimentConfig, model_dir: str, max_steps: int,
                is_chief: bool = True) -> list:
  """The SessionRunHooks for a training run, in the order they must run.

  Args:
    cfg: the experiment (`log.every_steps`, `summary.*`, `train.batch_size`).
    model_dir: where checkpoints are named from and summaries are written.
    max_steps: the final global step, for the ETA.
    is_chief: only the chief writes summaries (as Estimator's own hooks do).
  """
  output_dir = model_dir if is_chief else None
  per_run = cfg.train.steps_per_loop
  hooks = [NanGuardHook(model_dir),
           ProgressHook(max_steps, cfg.train.batch_size, cfg.log.every_steps,
                        output_dir, steps_per_run=per_run)]
  if is_chief and cfg.summary.histograms:
    every = cfg.summary.histogram_steps or cfg.summary.save_steps
    hooks.append(HistogramSaverHook(every, model_dir, steps_per_run=per_run))
  if is_chief and per_run > 1:
    # In place of Estimator's SummarySaverHook (off, see run_config), which
    # counts one step per run: the scalars and images at loop boundaries.
    hooks.append(HistogramSaverHook(cfg.summary.save_steps, model_dir,
                                    steps_per_run=per_run,
                                    collection=v1.GraphKeys.SUMMARIES))
  return hooks


def saving_listeners(cfg: ExperimentConfig, model_dir: str) -> list:
  """[FiniteCheckpointGuard] where checkpoints are saved at all.

  Estimator refuses listeners without a CheckpointSaverHook, which it only
  creates when checkpoint.save_steps or checkpoint.save_secs is positive.
  """
  if cfg.checkpoint.save_steps > 0 or cfg.checkpoint.save_secs > 0:
    return [FiniteCheckpointGuard(model_dir)]
  return []


def diverged_message(what: str, step: int, model_dir: str) -> str:
  """The one-paragraph TrainingDivergedError text: what, when, what is safe."""
  checkpoint = tf.train.latest_checkpoint(model_dir) if model_dir else None
  if checkpoint:
    good = rundir.checkpoint_step(checkpoint)
    last = (f"The last good checkpoint is {checkpoint} (step {good}); "
            "nothing from the diverged steps was saved (every checkpoint is "
            "checked to be finite before it is written).")
    resume = (f"Rerunning with the same --model_dir resumes from step {good}; "
              "a fresh --model_dir starts over.")
  else:
    last = f"No checkpoint has been written to {model_dir} yet."
    resume = "Rerun to start over."
  return (f"Training diverged at step {step}: {what}. {last} Lower "
          "optimizer.learning_rate, add warm-up (schedule.warmup_epochs) or "
          "gradient clipping (train.clip_global_norm=5), e.g. "
          "--params_override=optimizer.learning_rate=0.01. " + resume)


class _PeriodicHook(v1.train.SessionRunHook):
  """Runs `_fetches()` with the train step only on due steps.

  Due: the first step of a session, then every `every_steps` steps after the
  last due one (global steps 1, 101, 201, ... from scratch), which is also the
  schedule of Estimator's SummarySaverHook. With `steps_per_run` K > 1
  (train.steps_per_loop) each run advances K steps, so a run is due at the
  first loop boundary at or past the due step. With equal cadences every due step
  fetches the same set of tensors, and Session.run builds (and caches) one
  executor per distinct set of fetches: unaligned schedules would add more
  sets, each paying graph pruning and optimization the first time. Plus
  `last_step`, if given. Between due steps the step is counted locally; on a
  due step the global step is read back, which keeps the count right when
  several workers advance it.
  """

  def __init__(self, every_steps: int, last_step: int | None = None,
               steps_per_run: int = 1):
    self._every = max(1, int(every_steps))
    self._last_step = last_step
    self._per_run = max(1, int(steps_per_run))
    self._due = False

  def begin(self):
    self._global_step = v1.train.get_global_step()
    if self._global_step is None:
      raise RuntimeError(f"{type(self).__name__} needs a global step.")

  def after_create_session(self, session, coord):
    del coord
    self._step = int(session.run(self._global_step))  # Steps already done.
    self._last_due = None

  def _is_due(self, step: int) -> bool:
    return (self._last_due is None or step >= self._last_due + self._every or
            (self._last_step is not None and step >= self._last_step))

  def before_run(self, run_context):
    # The step this run completes.
    self._due = self._is_due(self._step + self._per_run)
    fetches = self._fetches() if self._due else None
    return v1.train.SessionRunArgs(fetches) if fetches is not None else None

  def after_run(self, run_context, run_values):
    if not self._due:
      self._step += self._per_run
      return
    self._step = self._last_due = int(run_context.session.run(self._global_step))
    self._on_due(self._step, run_values.results)

  def _fetches(self):
    raise NotImplementedError

  def _on_due(self, step: int, results) -> None:
    raise NotImplementedError


class ProgressHook(_PeriodicHook):
  """One progress line every `every_steps` and at the end, plus the ETA.

  `step 1200/64000, loss = 1.2345, lr = 0.1 (1523.4 examples/sec; 0.084
  sec/batch; ETA 1:28:03)`. Speed is wall time between two progress lines
  (evaluations and checkpoints included) over the global steps between them;
  examples/sec counts `batch_size` (the global batch) per step.
  """

  def __init__(self, max_steps: int, batch_size: int, every_steps: int,
               output_dir: str | None = None, steps_per_run: int = 1):
    super().__init__(every_steps, last_step=max_steps,
                     steps_per_run=steps_per_run)
    self._max_steps = max_steps
    self._batch_size = batch_size
    self._output_dir = output_dir

  def begin(self):
    super().begin()
    self._losses = v1.get_collection(summaries.LOSS_COLLECTION)
    rates = v1.get_collection(summaries.LEARNING_RATE_COLLECTION)
    # A model_fn that registers no rate still gets progress lines.
    self._rate = rates[0] if rates else tf.constant(float("nan"))
    self._writer = (v1.summary.FileWriterCache.get(self._output_dir)
                    if self._output_dir else None)
    self._last = None  # (step, time) of the previous line.

  def _fetches(self):
    return {"loss": self._losses, "lr": self._rate}

  def _on_due(self, step, results):
    now = time.time()
    loss = float(np.mean(results["loss"])) if self._losses else float("nan")
    head = (f"step {step}/{self._max_steps}, loss = {loss:.4f}, "
            f"lr = {float(results['lr']):.4g}")
    if self._last is None or step <= self._last[0]:
      logging.info("%s (timing from the next line on)", head)
    else:
      sec_per_step = (now - self._last[1]) / (step - self._last[0])
      examples = self._batch_size / sec_per_step
      eta = format_eta(max(0, self._max_steps - step) * sec_per_step)
      logging.info("%s (%.1f examples/sec; %.3f sec/batch; ETA %s)", head,
                   examples, sec_per_step, eta)
      if self._writer is not None:
        self._writer.add_summary(v1.Summary(value=[
            v1.Summary.Value(tag="global_step/sec", simple_value=1 / sec_per_step),
            v1.Summary.Value(tag="examples/sec", simple_value=examples)]), step)
    self._last = (step, now)

  def end(self, session):
    del session
    if self._writer is not None:
      self._writer.flush()


def format_eta(seconds: float) -> str:
  """`1:28:03`, or `2 days, 3:04:05` past a day."""
  return str(datetime.timedelta(seconds=int(round(seconds))))


class NanGuardHook(v1.train.SessionRunHook):
  """Stops training at the first NaN or Inf loss, naming the step.

  Checks every step: the loss is a scalar the step computes anyway (Estimator
  fetches it too), so the check adds only a little Python per step
  (`python -m tools.bench.summary_cost --hook_overhead` measures it). Under a
  distribution strategy every replica's loss is checked.
  """

  def __init__(self, model_dir: str):
    self._model_dir = model_dir

  def begin(self):
    self._losses = v1.get_collection(summaries.LOSS_COLLECTION)
    self._global_step = v1.train.get_global_step()

  def before_run(self, run_context):
    return v1.train.SessionRunArgs(self._losses) if self._losses else None

  def after_run(self, run_context, run_values):
    if not self._losses:
      return
    values = np.asarray(run_values.results, dtype=np.float64)
    if np.all(np.isfinite(values)):
      return
    step = int(run_context.session.run(self._global_step))
    bad = values[~np.isfinite(values)][0]
    raise TrainingDivergedError(diverged_message(
        f"the loss is {'NaN' if np.isnan(bad) else f'{bad:+}'}", step,
        self._model_dir))


class FiniteCheckpointGuard(v1.train.CheckpointSaverListener):
  """Refuses to save a checkpoint unless every float variable is finite.

  The check reads each variable once, as the save itself does, so it adds
  about the cost of a second save's reads and nothing to the train steps. It
  covers the loss averages (summaries.py) too: they turn NaN in the step where
  the loss does, which stops a save in that very step even if the weights
  still look finite.
  """

  def __init__(self, model_dir: str):
    self._model_dir = model_dir

  def begin(self):
    self._variables = [v for v in v1.global_variables()
                       if v.dtype.base_dtype.is_floating]
    self._finite = tf.stack(
        [tf.reduce_all(tf.math.is_finite(v)) for v in self._variables]
        or [tf.constant(True)])

  def before_save(self, session, global_step_value):
    finite = session.run(self._finite)
    if finite.all():
      return
    names = [v.op.name for v, ok in zip(self._variables, finite) if not ok]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more"
                                    if len(names) > 3 else "")
    raise TrainingDivergedError(diverged_message(
        f"{len(names)} variable(s) hold NaN or Inf ({shown}), found before "
        "saving a checkpoint", int(global_step_value), self._model_dir))


class HistogramSaverHook(_PeriodicHook):
  """Writes the summaries.HISTOGRAMS collection every `every_steps` steps.

  (Or another summary `collection`: with train.steps_per_loop > 1 a second
  one writes the SUMMARIES collection.)

  On the SummarySaverHook's schedule, so with the same cadence histograms
  land on the same steps as the scalars and images.
  """

  def __init__(self, every_steps: int, output_dir: str, steps_per_run: int = 1,
               collection: str = summaries.HISTOGRAMS):
    super().__init__(every_steps, steps_per_run=steps_per_run)
    self._output_dir = output_dir
    self._collection = collection

  def begin(self):
    super().begin()
    self._op = v1.summary.merge_all(self._collection)
    self._writer = v1.summary.FileWriterCache.get(self._output_dir)

  def _fetches(self):
    return self._op

  def _on_due(self, step, results):
    if results is not None:  # None: the model added no histograms.
      self._writer.add_summary(results, step)

  def end(self, session):
    del session
    self._writer.flush()
