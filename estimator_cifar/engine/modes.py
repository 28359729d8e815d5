"""Runs an experiment's mode: train, train_and_eval, eval, continuous_eval or
calibrate. Which split each evaluation scores: scoring.py.

Library code: takes a resolved ExperimentConfig and operational settings
(model_dir, mode, data_dir); never reads flags.
"""

import dataclasses
import os
import time

import tensorflow as tf
from absl import logging

from estimator_cifar import rundir
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import cifar_binary
from estimator_cifar.data.input_pipeline import make_input_fn
from estimator_cifar.data.source import TEST
from estimator_cifar.engine import (continuous_eval, distribute, export,
                                    hparams, precision, preemption, ps_task,
                                    rejoin, scoring, temperatures, warm_start)
from estimator_cifar.engine import TRAIN_MODES
from estimator_cifar.engine import hooks as hooks_lib
from estimator_cifar.engine.estimator_setup import Plan, make_estimator, make_plan
from estimator_cifar.model import lr_ranges, train_loop
from estimator_cifar.model.model_fn import configure_determinism
from estimator_cifar.rundir import (checkpoint_check, data_split, disk_space,
                                    identity, job_end, lock, metrics_log,
                                    run_record)

# Estimator is built on the v1 training APIs; their "deprecated, use tf.keras"
# notices on every hook say nothing a user of this package can act on.
from tensorflow.python.util import deprecation  # noqa: E402
deprecation._PRINT_DEPRECATION_WARNINGS = False


class MetricsLogExporter(tf.estimator.Exporter):
  """Appends each evaluation of `split` to eval/metrics.jsonl.

  Estimator calls exporters after every evaluation with its result and
  checkpoint, in local train_and_evaluate and on a cluster's evaluator alike;
  this one writes a log line instead of a SavedModel.
  """

  def __init__(self, split: str):
    self._split = split

  @property
  def name(self):
    return "metrics_log"

  def export(self, estimator, export_path, checkpoint_path, eval_result,
             is_the_final_export):
    del export_path, is_the_final_export
    row = metrics_log.append(estimator.model_dir, eval_result, checkpoint_path,
                             self._split)
    logging.info("Eval at step %d on the %s split: %s", row["global_step"],
                 self._split, scoring.brief(row))
    return None


def write_config(cfg: ExperimentConfig, model_dir: str) -> None:
  """Writes the final config to <model_dir>/config.json (logged if verbose)."""
  text = cfg.to_json()
  logging.debug("Final config:\n%s", text)
  rundir.write_config(model_dir, text)


def run(cfg: ExperimentConfig, model_dir: str, mode: str = "train_and_eval",
        data_dir: str | None = None, warm_start_from: str | None = None,
        allow_config_change: bool = False,
        resume_from_previous: bool = False, split: str | None = None) -> dict:
  """Runs `mode` and returns the last eval metrics (empty for train).

  `split`: the split `--mode=eval` scores (default the test split).

  Train modes refuse a model_dir written for another model or classes unless
  `allow_config_change` (before anything is written there), record the run in
  <model_dir>/run_info.json ("running" first, how it ended once it does; see
  run_record.py), and warm-start from `warm_start_from` (a checkpoint prefix or
  directory) and/or `warm_start.values_npz` unless they resume. They check
  that the newest checkpoint is whole first (`resume_from_previous`: fall back
  to the newest complete one; see checkpoint_check.py), and turn SIGTERM or
  SIGINT into a checkpoint at the current step and a normal return (see
  preemption.py). A cluster's ps and evaluator tasks run their own loops
  (ps_task.py, continuous_eval.py), which end with the job or on a signal.

  Every mode refuses a non-empty folder that holds no run, and the trainer
  and each continuous-eval job hold the model_dir's lock of their role while
  they run (rundir/lock.py): a second one for the same role is refused before
  anything is written.

  Raises:
    UserError subclasses for anything the user can fix.
  """
  cluster = distribute.read_tf_config()
  lock.check_is_run_or_empty(model_dir)
  with lock.held(model_dir, _lock_role(mode, cluster)):
    return _run_owned(cfg, model_dir, mode, data_dir, warm_start_from,
                      allow_config_change, resume_from_previous, cluster,
                      split)


def _lock_role(mode: str, cluster: distribute.Cluster | None) -> str | None:
  """The lock this process takes: the trainer's is the chief's alone (its
  workers and ps tasks share its run); one evaluator per eval name."""
  task = cluster.task_type if cluster is not None else None
  if mode == "continuous_eval" or (mode in TRAIN_MODES and task == "evaluator"):
    return lock.evaluator()
  if mode in TRAIN_MODES and (cluster is None or cluster.is_chief):
    return lock.TRAINER
  return None


def _run_owned(cfg: ExperimentConfig, model_dir: str, mode: str,
               data_dir: str | None, warm_start_from: str | None,
               allow_config_change: bool, resume_from_previous: bool,
               cluster: distribute.Cluster | None, split: str | None) -> dict:
  """`run` once this process may write the model_dir as its role."""
  distribute.warn_if_exposed(cluster, mode)
  task = cluster.task_type if cluster is not None else None
  if task == "ps" and mode in TRAIN_MODES:
    return ps_task.run(cfg, model_dir, cluster)
  if not _trains(mode, cluster):
    with disk_space.writes_into(model_dir):
      return _run(cfg, model_dir, mode, data_dir, split=split)
  identity.check_config(cfg, model_dir, allow_config_change)
  if cluster is None or cluster.is_chief:
    # Only the chief writes checkpoints; another task checking them could
    # catch the chief halfway through a save.
    checkpoint_check.check_checkpoints(model_dir, resume_from_previous)
    disk_space.check(model_dir, tf.train.latest_checkpoint(model_dir))
  try:
    record = run_record.start(cfg, model_dir, mode, data_dir)
  except OSError as e:
    _raise_if_unwritable(e, model_dir)
    raise
  error, result = None, None
  try:
    with preemption.PreemptionHook(model_dir) as stop_hook:
      result = _run(cfg, model_dir, mode, data_dir, warm_start_from, [stop_hook])
    if task == "worker" and cluster.has_ps:  # The ps tasks may stop for it.
      job_end.mark_done(model_dir, "worker", cluster.task_index)
    return result
  except preemption.Preempted as e:
    error = e
    _preempted_line(cfg, mode, model_dir, e)
    return {}
  except BaseException as e:
    error = e
    _raise_if_unwritable(e, model_dir)
    shrunk = cifar_binary.shrunk_file_error(e)  # A data file cut short mid-run.
    if shrunk is not None:
      raise shrunk from None
    raise
  finally:
    # auto decides once the data is in place (make_estimator), so a run
    # without its data fails before any probe; the record gets it at the end.
    run_record.end(record, error, result, precision=precision.run_fact(cfg))


def _trains(mode: str, cluster: distribute.Cluster | None) -> bool:
  """Whether this process trains: a train mode, and not a cluster's evaluator."""
  return mode in TRAIN_MODES and (cluster is None
                                  or cluster.task_type != "evaluator")


def _raise_if_unwritable(e: BaseException, model_dir: str) -> None:
  """A full or read-only model_dir, however deep raised, as one user error."""
  user_error = disk_space.unwritable_error(e, model_dir)
  if user_error is not None:
    raise user_error from None


def _run(cfg: ExperimentConfig, model_dir: str, mode: str,
         data_dir: str | None, warm_start_from: str | None = None,
         hooks: list | None = None, split: str | None = None) -> dict:
  """The modes themselves; `run` adds the run record around them."""
  start = time.time()
  cluster = distribute.read_tf_config()
  distribute.check(cfg, cluster, mode)
  distribute.configure_devices(cfg)  # Before anything initialises TensorFlow.
  configure_determinism(cfg.train.seed)  # Before any input pipeline is built.
  plan = make_plan(cfg, data_dir)
  if mode in TRAIN_MODES:
    lr_ranges.warn_if_outside(cfg)
  logging.info("Data %s: %d train / %d eval images, %d classes; %d steps "
               "(%.1f epochs of %.1f steps).", plan.source.name,
               plan.source.num_train, plan.source.num_eval,
               plan.source.num_classes, plan.max_steps,
               plan.max_steps / plan.steps_per_epoch, plan.steps_per_epoch)
  train_input = distribute.shard_for_worker(
      make_input_fn(cfg, plan.source, training=True), cluster)
  train_input = train_loop.stack_batches(train_input, cfg.train.steps_per_loop)
  eval_input = make_input_fn(cfg, plan.source, training=False,
                             split=scoring.training_split(cfg))
  warm = None
  if mode in TRAIN_MODES:
    warm = warm_start.settings(cfg, warm_start_from, model_dir,
                               plan.source.num_classes)
  # One writer per run: the chief of a cluster, never its evaluator or ps.
  writer = mode in TRAIN_MODES and (cluster is None or cluster.is_chief)
  # The split never moves under a run: every mode checks it, the writer
  # records it.
  data_split.check_and_write(model_dir, plan.source.split_info, writer)
  if writer:
    write_config(cfg, model_dir)
    hparams.write(cfg, model_dir)
    identity.write_label_names(model_dir, plan.source.label_names)
  estimator = make_estimator(cfg, model_dir, plan, warm_start_from=warm,
                             training=_trains(mode, cluster))
  train_hooks = hooks_lib.train_hooks(cfg, model_dir, plan.max_steps,
                                      estimator.config.is_chief)
  train_hooks += list(hooks or ())  # E.g. the preemption hook from run().
  built = _Run(cfg, model_dir, plan, estimator, train_input, eval_input, cluster,
               train_hooks, hooks_lib.saving_listeners(cfg, model_dir), split)
  result = rejoin.run(lambda: _BODIES[mode](built), cluster, model_dir)
  _summary_line(cfg, mode, model_dir, built.results, time.time() - start)
  return result


@dataclasses.dataclass
class _Run:
  """What `_run` builds once and each mode's body uses."""
  cfg: ExperimentConfig
  model_dir: str
  plan: Plan
  estimator: tf.estimator.Estimator
  train_input: object
  eval_input: object
  cluster: distribute.Cluster | None
  train_hooks: list
  listeners: list
  split: str | None = None  # --mode=eval's.
  # Each split's last result, for the Done line.
  results: dict = dataclasses.field(default_factory=dict)

  def scored(self, result: dict | None, split: str) -> dict:
    """Keeps `result` of `split` for the Done line; returns it ({} if None)."""
    if not result:
      return {}
    self.results[split] = dict(result, split=split)
    return self.results[split]


def _train(r: _Run) -> dict:
  r.estimator.train(r.train_input, max_steps=r.plan.max_steps,
                    hooks=r.train_hooks, saving_listeners=r.listeners)
  final = tf.train.latest_checkpoint(r.model_dir)
  if final and (r.cluster is None or r.cluster.is_chief):
    # eval.calibration: the final checkpoint's temperature, fitted as
    # training ends (train_and_eval's exports and test score fit theirs).
    temperatures.temperature_for(r.cfg, r.model_dir, final, r.plan.source)
  return {}


def _train_and_eval(r: _Run) -> dict:
  split = scoring.training_split(r.cfg)
  if r.cluster is not None and r.cluster.task_type == "evaluator":
    # Estimator's evaluator loop sleeps throttle_secs even when it found no
    # checkpoint; this one polls (continuous_eval.py). No idle timeout, as in
    # Estimator's: the chief's run record tells when the job is over.
    return _evaluate_as_they_land(r, float("inf"),
                                  export.exporters(r.cfg, r.plan.source),
                                  r.cfg.eval.start_delay_secs)
  train_spec = tf.estimator.TrainSpec(r.train_input, max_steps=r.plan.max_steps,
                                      hooks=r.train_hooks,
                                      saving_listeners=r.listeners)
  eval_spec = tf.estimator.EvalSpec(
      r.eval_input, steps=None, name=scoring.eval_name(r.cfg, split),
      exporters=[MetricsLogExporter(split)] + export.exporters(r.cfg,
                                                               r.plan.source),
      start_delay_secs=r.cfg.eval.start_delay_secs,
      throttle_secs=r.cfg.eval.throttle_secs)
  outcome = tf.estimator.train_and_evaluate(r.estimator, train_spec, eval_spec)
  if r.cluster is not None:  # None on a cluster's tasks: the evaluator scores.
    return {}
  result = r.scored((outcome or ({},))[0] or _missed_final_eval(r, split),
                    split)
  return r.scored(scoring.test_once(r.cfg, r.model_dir, r.plan), TEST) or result


def _eval(r: _Run) -> dict:
  split = r.split or TEST
  scoring.check_split(r.cfg, split, r.model_dir)
  checkpoint = checkpoint_check.newest_checkpoint(r.model_dir, "--mode=eval")
  return r.scored(scoring.score(r.cfg, r.model_dir, r.plan, split, checkpoint),
                  split)


def _continuous_eval(r: _Run) -> dict:
  return _evaluate_as_they_land(r, r.cfg.eval.timeout_secs)


def _evaluate_as_they_land(r: _Run, timeout_secs: float, exporters=(),
                           start_delay_secs: float = 0) -> dict:
  """continuous_eval.run on the training-time split, then the test split
  once when it ends at the final checkpoint (scoring.test_once)."""
  split = scoring.training_split(r.cfg)
  result = r.scored(continuous_eval.run(
      r.estimator, r.eval_input, r.model_dir, r.plan.max_steps, timeout_secs,
      r.cfg.eval.throttle_secs, exporters, start_delay_secs, split), split)
  if result and int(result.get("global_step", 0)) >= r.plan.max_steps:
    return r.scored(scoring.test_once(r.cfg, r.model_dir, r.plan),
                    TEST) or result
  return result


def _calibrate(r: _Run) -> dict:
  """--mode=calibrate: fits the newest checkpoint's temperature."""
  checkpoint = checkpoint_check.newest_checkpoint(r.model_dir,
                                                  "--mode=calibrate")
  figures = temperatures.fit(r.cfg, r.model_dir, checkpoint, r.plan.source)
  print(f"Calibrated: {os.path.basename(checkpoint)} temperature="
        f"{figures['temperature']:.4f} on {figures['images']} validation "
        f"images: nll {figures['nll_before']:.4f} -> {figures['nll_after']:.4f}"
        f", ece {figures['ece_before']:.4f} -> {figures['ece_after']:.4f}; "
        "evaluation, predict and new exports of this checkpoint return "
        "calibrated probabilities.", flush=True)
  return figures


# The body of each mode `run` serves (run.MODES adds export and predict).
_BODIES = {"train_and_eval": _train_and_eval, "train": _train, "eval": _eval,
           "continuous_eval": _continuous_eval, "calibrate": _calibrate}


def _missed_final_eval(r: _Run, split: str) -> dict:
  """The final eval of a run resumed with nothing left to train.

  A run killed after its last checkpoint but before its final evaluation is
  at max_steps when resumed: Estimator then skips training and with it every
  evaluation, so do it here, unless metrics.jsonl already has that checkpoint.
  """
  checkpoint = tf.train.latest_checkpoint(r.model_dir)
  if checkpoint is None:
    return {}
  rows = metrics_log.rows_of(r.model_dir, split)
  if rows and rows[-1].get("checkpoint") == os.path.basename(checkpoint):
    return rows[-1]
  result = r.estimator.evaluate(r.eval_input, checkpoint_path=checkpoint,
                                name=scoring.eval_name(r.cfg, split))
  metrics_log.append(r.model_dir, result, checkpoint, split)
  return result


def _preempted_line(cfg, mode, model_dir, preempted) -> None:
  """The same line for SIGTERM and Ctrl-C: where it stopped, how to go on."""
  stopped = "Interrupted" if preempted.signal_name == "SIGINT" else "Preempted"
  saved = f"saved at step {preempted.step}" if preempted.checkpoint else \
      f"stopped at step {preempted.step} (the chief saves)"
  line = (f"{stopped}: {cfg.name} mode={mode} step={preempted.step} "
          f"checkpoint={preempted.checkpoint} model_dir={model_dir}; {saved}; "
          "run the same command to continue.")
  logging.warning(line)
  print(line, flush=True)


def _summary_line(cfg, mode, model_dir, results: dict, seconds) -> None:
  """`Done: NAME mode=M step=N <split>: accuracy=... time=...`, each split's
  figures after its name."""
  steps = [result["global_step"] for result in results.values()
           if "global_step" in result]
  step = max(steps) if steps else (
      rundir.checkpoint_step(tf.train.latest_checkpoint(model_dir)) or 0)
  figures = "".join(f"{split}: {scoring.brief(result)} "
                    for split, result in results.items())
  line = (f"Done: {cfg.name} mode={mode} step={int(step)} {figures}"
          f"time={seconds:.1f}s model_dir={model_dir}")
  print(line, flush=True)  # On stdout once, where scripts read it.
