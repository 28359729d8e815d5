"""Learning-rate schedules, optimizers and gradient transforms (graph mode).

All schedules are functions of the global step, with epochs converted through
the real steps per epoch of the dataset in use. The formulas (the README and the
tests use the same ones), with `base` the (optionally batch-scaled) rate, `s`
the step and `e = s / steps_per_epoch`:

  constant     base
  exponential  base * decay_rate ** (e / decay_epochs)   (floor() if staircase)
  polynomial   (base - end) * (1 - min(s, T) / T) ** power + end, T = total
               steps (with cycle: T grows to the next multiple of total steps)
  piecewise    values[i] (or base * multipliers[i]) for boundaries_epochs[i-1]
               <= e < boundaries_epochs[i]
  cosine       base * 0.5 * (1 + cos(pi * min(s, T) / T)), T = total steps
  warmup       for s < W = warmup_epochs * steps_per_epoch the rate is
               base * s / W; from W on, the schedule above at step s.
"""

import math
import re

import tensorflow as tf

from estimator_cifar.config import ExperimentConfig, TrainConfig

v1 = tf.compat.v1

# The batch size at which `optimizer.learning_rate` is quoted when it scales.
REFERENCE_BATCH = 128


def base_learning_rate(cfg: ExperimentConfig) -> float:
  rate = cfg.optimizer.learning_rate
  if cfg.optimizer.scale_lr_with_batch:
    rate *= cfg.train.batch_size / REFERENCE_BATCH
  return rate


def learning_rate(cfg: ExperimentConfig, global_step, steps_per_epoch: float,
                  total_steps: int) -> tf.Tensor:
  """The learning rate tensor at `global_step` (see the module docstring)."""
  sched, base = cfg.schedule, base_learning_rate(cfg)
  step = tf.cast(global_step, tf.float32)
  epoch = step / steps_per_epoch
  total = float(max(total_steps, 1))
  if sched.name == "constant":
    rate = tf.constant(base, tf.float32)
  elif sched.name == "exponential":
    power = epoch / sched.decay_epochs
    if sched.staircase:
      power = tf.floor(power)
    rate = base * tf.pow(sched.decay_rate, power)
  elif sched.name == "polynomial":
    horizon = total
    if sched.cycle:
      horizon = total * tf.maximum(1.0, tf.math.ceil(step / total))
    frac = 1.0 - tf.minimum(step, horizon) / horizon
    rate = (base - sched.end_learning_rate) * tf.pow(frac, sched.power) + \
        sched.end_learning_rate
  elif sched.name == "piecewise":
    values = sched.values or [base * m for m in sched.multipliers]
    boundaries = [round(b * steps_per_epoch) for b in sched.boundaries_epochs]
    rate = tf.constant(values[-1], tf.float32)
    for bound, value in reversed(list(zip(boundaries, values))):
      rate = tf.where(step < bound, tf.constant(value, tf.float32), rate)
  elif sched.name == "cosine":
    rate = base * 0.5 * (1.0 + tf.cos(math.pi * tf.minimum(step, total) / total))
  else:
    raise ValueError(f"unknown schedule {sched.name}")
  warmup_steps = sched.warmup_epochs * steps_per_epoch
  if warmup_steps > 0:
    rate = tf.where(step < warmup_steps, base * step / warmup_steps, rate)
  # Not named "learning_rate": that name belongs to the summary tag, and TF
  # would make the tag "learning_rate_1" to keep op names unique.
  return tf.identity(rate, name="scheduled_learning_rate")


def learning_rate_value(cfg: ExperimentConfig, step: int, steps_per_epoch: float,
                        total_steps: int) -> float:
  """The same formula in plain Python, for logs, ETA lines and tests."""
  with tf.Graph().as_default():
    rate = learning_rate(cfg, tf.constant(step, tf.int64), steps_per_epoch,
                         total_steps)
    with v1.Session() as sess:
      return float(sess.run(rate))


def build_optimizer(cfg: ExperimentConfig, rate: tf.Tensor):
  """The v1 optimizer `optimizer.name`, loss-scaled under mixed_float16.

  float16 gradients underflow without loss scaling (the old tutorial's
  `use_fp16` trained badly for that reason), so mixed_float16 always wraps the
  optimizer in a dynamic loss scale; bfloat16 has float32's range and needs none.
  """
  o = cfg.optimizer
  makers = {
      "sgd": lambda: v1.train.GradientDescentOptimizer(rate),
      "momentum": lambda: v1.train.MomentumOptimizer(rate, o.momentum),
      "nesterov": lambda: v1.train.MomentumOptimizer(rate, o.momentum,
                                                     use_nesterov=True),
      "adam": lambda: v1.train.AdamOptimizer(rate, o.beta1, o.beta2, o.epsilon),
      "adamw": lambda: v1.train.AdamOptimizer(rate, o.beta1, o.beta2, o.epsilon),
      "adagrad": lambda: v1.train.AdagradOptimizer(rate, o.initial_accumulator),
      "adadelta": lambda: v1.train.AdadeltaOptimizer(rate, o.rho, o.epsilon),
      "rmsprop": lambda: v1.train.RMSPropOptimizer(rate, o.decay, o.momentum,
                                                   o.epsilon),
      "ftrl": lambda: v1.train.FtrlOptimizer(
          rate, initial_accumulator_value=o.initial_accumulator,
          l1_regularization_strength=o.l1, l2_regularization_strength=o.l2),
  }
  opt = makers[o.name]()
  if cfg.train.precision == "mixed_float16":
    opt = v1.mixed_precision.MixedPrecisionLossScaleOptimizer(opt, "dynamic")
  return opt


def trainable_variables(scopes: list[str]) -> list[tf.Variable]:
  """Trainable variables, restricted to `train.trainable_scopes` when given.

  Each scope is a regex matched at the start of the variable name, so a plain
  scope prefix (`resnet/logits`) works too.
  """
  variables = v1.trainable_variables()
  if not scopes:
    return variables
  return [v for v in variables if any(re.match(s, v.op.name) for s in scopes)]


def in_scopes(name: str, scopes: list[str]) -> bool:
  return not scopes or any(re.match(s, name) for s in scopes)


def transform_gradients(cfg: TrainConfig, grads_and_vars):
  """Multipliers by variable-name regex, then clip by value, then by global norm.

  Returns:
    (grads_and_vars, global_norm): the norm is of the gradients before the
    global-norm clip, for TensorBoard.
  """
  pairs = [(g, v) for g, v in grads_and_vars if g is not None]
  if cfg.gradient_multipliers:
    out = []
    for g, v in pairs:
      for pattern, mult in cfg.gradient_multipliers.items():
        if re.search(pattern, v.op.name):
          g = g * mult
          break
      out.append((g, v))
    pairs = out
  if cfg.clip_value > 0:
    pairs = [(tf.clip_by_value(g, -cfg.clip_value, cfg.clip_value), v)
             for g, v in pairs]
  grads = [g for g, _ in pairs]
  norm = tf.linalg.global_norm(grads)
  if cfg.clip_global_norm > 0:
    grads, _ = tf.clip_by_global_norm(grads, cfg.clip_global_norm, use_norm=norm)
    pairs = list(zip(grads, [v for _, v in pairs]))
  return pairs, norm


def decoupled_weight_decay(cfg: ExperimentConfig, variables, rate: tf.Tensor):
  """AdamW's decay, v <- v - wd * (rate / base) * v, applied after the step.

  Loshchilov & Hutter (2019) scale the decay by the schedule multiplier, not by
  the raw rate, so `optimizer.weight_decay` reads like a per-step fraction.
  """
  wd = cfg.optimizer.weight_decay
  if cfg.optimizer.name != "adamw" or wd <= 0:
    return tf.no_op()
  scale = wd * rate / base_learning_rate(cfg)
  return tf.group(*[v.assign_sub(scale * v) for v in variables])
