"""The Estimator a run uses: its Plan (data and steps), session and RunConfig.

Shared by the modes and by export/predict, which rebuild the same Estimator.
"""

import dataclasses
import math
import os

import tensorflow as tf
from absl import logging

from estimator_cifar import cpu_kernels
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import sources
from estimator_cifar.engine import distribute, precision
from estimator_cifar.loaded_code import as_loaded
from estimator_cifar.model import train_loop
from estimator_cifar.model.model_fn import ModelParams, model_fn


@dataclasses.dataclass
class Plan:
  """What a run will do, derived once from the config and the data."""
  source: sources.DataSource
  steps_per_epoch: float
  max_steps: int

  def model_params(self, cfg: ExperimentConfig,
                   temperature: float = 1.0) -> ModelParams:
    return ModelParams(cfg, self.source.num_classes, self.steps_per_epoch,
                       self.max_steps, tuple(self.source.label_names),
                       temperature)


def make_plan(cfg: ExperimentConfig, data_dir: str | None) -> Plan:
  """Resolves the data (sizes from the files) and the number of steps."""
  source = sources.get_source(cfg, data_dir)
  steps_per_epoch = source.num_train / cfg.train.batch_size
  max_steps = cfg.train.steps if cfg.train.steps > 0 else \
      math.ceil(cfg.train.epochs * steps_per_epoch)
  return Plan(source, steps_per_epoch, max_steps)


def session_config(cfg: ExperimentConfig) -> tf.compat.v1.ConfigProto:
  """`session.*` as a ConfigProto (threads, GPU memory, placement log, XLA)."""
  s = cfg.session
  proto = tf.compat.v1.ConfigProto(
      intra_op_parallelism_threads=s.intra_op_threads,
      inter_op_parallelism_threads=s.inter_op_threads,
      allow_soft_placement=True,
      log_device_placement=s.log_device_placement)
  proto.gpu_options.allow_growth = s.allow_growth
  if s.gpu_memory_fraction > 0:
    proto.gpu_options.per_process_gpu_memory_fraction = s.gpu_memory_fraction
  if s.xla:
    proto.graph_options.optimizer_options.global_jit_level = \
        tf.compat.v1.OptimizerOptions.ON_1
    _warn_if_xla_on_cpu()
  return proto


def _warn_if_xla_on_cpu() -> None:
  """Auto-clustering skips CPUs unless TF_XLA_FLAGS asks: say what happens."""
  if tf.config.list_physical_devices("GPU"):
    return
  cpu_jit = "--tf_xla_cpu_global_jit" in os.environ.get("TF_XLA_FLAGS", "")
  logging.log_first_n(
      logging.WARNING, "session.xla=true without a GPU: " + (
          "XLA clusters the CPU graph (TF_XLA_FLAGS=--tf_xla_cpu_global_jit); "
          "several times slower than without on ResNet-20 "
          "(docs/performance.md)."
          if cpu_jit else
          "TensorFlow's auto-clustering leaves CPU graphs alone, so the "
          "setting changes nothing here (XLA on CPU needs "
          "TF_XLA_FLAGS=--tf_xla_cpu_global_jit, and is slower there)."), 1)


def run_config(cfg: ExperimentConfig, model_dir: str) -> tf.estimator.RunConfig:
  """Checkpoint cadence and retention, summaries, seed, session, strategies."""
  ckpt = cfg.checkpoint
  by_steps = ckpt.save_steps > 0
  cluster = distribute.read_tf_config()
  train_distribute, eval_distribute = distribute.make_strategies(cfg, cluster)
  return tf.estimator.RunConfig(
      model_dir=model_dir,
      tf_random_seed=cfg.train.seed or None,
      # Looped training writes them from hooks.train_hooks, at loop boundaries.
      save_summary_steps=(cfg.summary.save_steps
                          if cfg.train.steps_per_loop == 1 else None),
      save_checkpoints_steps=ckpt.save_steps if by_steps else None,
      save_checkpoints_secs=None if by_steps else ckpt.save_secs,
      keep_checkpoint_max=ckpt.keep_max,
      keep_checkpoint_every_n_hours=ckpt.keep_every_n_hours,
      # hooks.ProgressHook logs every log.every_steps and writes
      # global_step/sec; Estimator's own loss/step and global_step/sec lines
      # would repeat it.
      log_step_count_steps=None,
      session_config=distribute.adjust_session_config(
          cfg, session_config(cfg), cluster),
      train_distribute=train_distribute, eval_distribute=eval_distribute,
      experimental_max_worker_delay_secs=cfg.distribute.max_worker_delay_secs)


def make_estimator(cfg: ExperimentConfig, model_dir: str, plan: Plan,
                   warm_start_from=None, temperature: float = 1.0,
                   training: bool = True) -> tf.estimator.Estimator:
  """The run's Estimator; `temperature` divides the logits of the returned
  probabilities (engine/temperatures.py). train.precision=auto is decided
  (and logged) here, and only where the Estimator trains (`training`): the
  other modes compute in float32 (model_fn.py) and need no probe."""
  if training:
    cfg = precision.resolve(cfg)
  cpu_kernels.log_once()
  looped_model_fn = as_loaded(train_loop.looped(model_fn, cfg.train.steps_per_loop))
  return tf.estimator.Estimator(model_fn=looped_model_fn, model_dir=model_dir,
                                config=run_config(cfg, model_dir),
                                params=plan.model_params(cfg, temperature),
                                warm_start_from=warm_start_from)


def serving_estimator(cfg: ExperimentConfig, model_dir: str, num_classes: int,
                      temperature: float = 1.0) -> tf.estimator.Estimator:
  """An Estimator on model_dir for export, predict and calibration: no data
  needed."""
  return tf.estimator.Estimator(
      model_fn=as_loaded(model_fn), model_dir=model_dir,
      config=run_config(cfg, model_dir),
      params=ModelParams(cfg, num_classes, temperature=temperature))
