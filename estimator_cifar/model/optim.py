"""Learning-rate schedules, optimizers and gradient transforms (graph mode).

All schedules are functions of the global step `s`, with epochs converted
through the real steps per epoch `P` of the dataset in use (train records /
batch size). With `base` = optimizer.learning_rate (times batch_size / 128 when
optimizer.scale_lr_with_batch), `e = s / P`, `end` = schedule.end_learning_rate
and `T` = schedule.horizon_epochs * P, or the run's total steps when that is 0:

  constant     base
  exponential  base * decay_rate ** (e / decay_epochs)
               (the exponent floor()ed when staircase)
  polynomial   (base - end) * (1 - min(s, T') / T') ** power + end, where
               T' = T, or with cycle T' = T * max(1, ceil(s / T)) (restarts)
  piecewise    values[i], or base * multipliers[i], while B[i-1] <= s < B[i],
               B[i] = round(boundaries_epochs[i] * P)
  cosine       end + (base - end) * 0.5 * (1 + cos(pi * min(s, T) / T))
  warmup       with W = warmup_epochs * P > 0: for s < W the rate is
               base * s / W (linear from 0); from W on, the schedule above at
               the same step s (as in Goyal et al. 2017 and tf-models'
               LinearWarmup, so the schedule's own boundaries do not move).

exponential and polynomial are tf.compat.v1.train's *_decay formulas; all are
written out here so that one function serves the graph, the logs and the tests.
"""

import math
import re

import tensorflow as tf

from estimator_cifar.config import ExperimentConfig, TrainConfig
from estimator_cifar.errors import ConfigError

v1 = tf.compat.v1

# The batch size at which `optimizer.learning_rate` is quoted when it scales.
REFERENCE_BATCH = 128


def base_learning_rate(cfg: ExperimentConfig) -> float:
  """optimizer.learning_rate, times batch_size / 128 if it scales with batch."""
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
  horizon = float(max(sched.horizon_epochs * steps_per_epoch
                      if sched.horizon_epochs > 0 else total_steps, 1))
  end = sched.end_learning_rate
  if sched.name == "constant":
    rate = tf.constant(base, tf.float32)
  elif sched.name == "exponential":
    power = epoch / sched.decay_epochs
    if sched.staircase:
      power = tf.floor(power)
    rate = base * tf.pow(sched.decay_rate, power)
  elif sched.name == "polynomial":
    span = tf.constant(horizon)
    if sched.cycle:
      span = horizon * tf.maximum(1.0, tf.math.ceil(step / horizon))
    frac = 1.0 - tf.minimum(step, span) / span
    rate = (base - end) * tf.pow(frac, sched.power) + end
  elif sched.name == "piecewise":
    values = sched.values or [base * m for m in sched.multipliers]
    boundaries = [round(b * steps_per_epoch) for b in sched.boundaries_epochs]
    rate = tf.constant(values[-1], tf.float32)
    for bound, value in reversed(list(zip(boundaries, values))):
      rate = tf.where(step < bound, tf.constant(value, tf.float32), rate)
  elif sched.name == "cosine":
    progress = tf.minimum(step, horizon) / horizon
    rate = end + (base - end) * 0.5 * (1.0 + tf.cos(math.pi * progress))
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

  Hyperparameters (optimizer.*): momentum/nesterov: momentum; adam/adamw:
  beta1, beta2, epsilon (adamw adds the decoupled weight_decay, see
  decoupled_weight_decay); adagrad: initial_accumulator; adadelta: rho,
  epsilon (its rate is a multiplier; 1.0 is the paper's); rmsprop: decay,
  momentum, epsilon; ftrl: initial_accumulator, learning_rate_power, l1, l2.

  ftrl is FTRL-Proximal (McMahan et al. 2013; made for sparse linear models,
  offered as slim offered it), started from the initial weights: see
  FtrlFromInitOptimizer.

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
      "ftrl": lambda: FtrlFromInitOptimizer(
          rate, learning_rate_power=o.learning_rate_power,
          initial_accumulator_value=o.initial_accumulator,
          l1_regularization_strength=o.l1, l2_regularization_strength=o.l2),
  }
  opt = makers[o.name]()
  if cfg.train.precision == "mixed_float16":
    opt = v1.mixed_precision.MixedPrecisionLossScaleOptimizer(opt, "dynamic")
  return opt


class FtrlFromInitOptimizer(v1.train.FtrlOptimizer):
  """TF's FTRL-Proximal, continuing from the weights it is given.

  FTRL does not step from the current weight: it recomputes it from two
  accumulators, w = -(z + l1 * sign(z)) / (n ** -p / lr + 2 * l2) (zero where
  |z| <= l1). TF starts z at 0, so the first step throws the initializer away
  (He-initialized kernels become ~ -lr * g / sqrt(n), tiny), which cripples a
  deep network, and a warm start likewise. Here, wherever a coordinate's `n`
  still holds its initial value (it has never had a gradient), z is first set
  to -(w * y + l1 * sign(w)), y = n ** -p / lr + 2 * l2: the value that gives
  back the current w, so the step starts from the initialized or warm-started
  weights like every other optimizer. Restored slots are left alone. The
  weights still scale with the current rate (lr is a regularization strength
  in FTRL), so keep the schedule constant; validation refuses warm-up from 0.
  Dense gradients only (these models have no embeddings).
  """

  def _resource_apply_dense(self, grad, var):
    accum, linear = self.get_slot(var, "accum"), self.get_slot(var, "linear")
    n0 = self._initial_accumulator_value
    rate = tf.cast(self._learning_rate_tensor, var.dtype.base_dtype)
    w = var.read_value()
    y = (n0 ** -self._learning_rate_power / rate +
         2.0 * self._l2_regularization_strength)
    z_of_w = -(w * y + self._l1_regularization_strength * tf.sign(w))
    fresh = tf.equal(accum.read_value(), n0)
    start = linear.assign(tf.where(fresh, z_of_w, linear.read_value()))
    with tf.control_dependencies([start]):
      return super()._resource_apply_dense(grad, var)


def trainable_variables(scopes: list[str]) -> list[tf.Variable]:
  """Trainable variables, restricted to `train.trainable_scopes` when given.

  Each scope is a regex matched at the start of the variable name, so a plain
  scope prefix (`resnet/logits`) works too. Everything else stays frozen,
  batch-norm moving statistics included (model_fn drops their update ops).

  Raises:
    ConfigError: scopes were given but match no trainable variable.
  """
  variables = v1.trainable_variables()
  if not scopes:
    return variables
  chosen = [v for v in variables if in_scopes(v.op.name, scopes)]
  if not chosen:
    names = ", ".join(v.op.name for v in variables[:4])
    raise ConfigError(
        f"train.trainable_scopes={scopes} matches no trainable variable, so "
        f"nothing would train. Variable names look like: {names}, ... Each "
        "scope is a regex matched at the start of the name, e.g. "
        "--params_override=train.trainable_scopes=[resnet/logits].")
  return chosen


def in_scopes(name: str, scopes: list[str]) -> bool:
  """Whether one of `scopes` matches `name` (True when there are none).

  A scope is a regex matched from the start of the name that must end on a
  scope boundary (a `/` or the end), so `resnet/stage1` covers
  `resnet/stage1/block0/...` but not `resnet/stage10/...`; `.*` matches all.
  Warm-start include/exclude lists use the same rule.
  """
  return not scopes or any(re.match(f"(?:{s})(?:/|$)", name) for s in scopes)


def decayed_variables(variables, on: str) -> list[tf.Variable]:
  """The variables that weight decay (L2 or AdamW's decoupled) applies to.

  `kernels` (the default) leaves biases and batch-norm scales/offsets
  undecayed, as in He et al. 2016; `dense_kernels` is the classic tutorial's
  choice (fully connected layers only); `all` decays every variable.
  """
  if on == "all":
    return list(variables)
  kernels = [v for v in variables if v.op.name.endswith("/kernel")]
  if on == "dense_kernels":
    return [v for v in kernels if v.shape.ndims == 2]
  return kernels


def _replicas_in_sync() -> int:
  """Replicas a synchronous strategy sums gradients over; 1 without one."""
  if not tf.distribute.has_strategy() or \
      tf.distribute.in_cross_replica_context():
    return 1
  return tf.distribute.get_strategy().num_replicas_in_sync


def transform_gradients(cfg: TrainConfig, grads_and_vars):
  """Multipliers by variable-name regex, then clip by value, then by global norm.

  Under a synchronous strategy (mirrored, central_storage) each replica's
  gradients are of its share of the loss (the v1 optimizer scales it by
  1/replicas), and apply_gradients sums them across replicas afterwards. The
  transforms act on that sum, the gradient of the whole global batch, as on
  one device: clipping each replica's part instead would let the sum reach
  `replicas` times `clip_global_norm`. Pass the result through
  `per_replica_share` before apply_gradients.

  Returns:
    (grads_and_vars, global_norm): the gradients of the global batch, and
    their norm before the global-norm clip, for TensorBoard.
  """
  pairs = [(g, v) for g, v in grads_and_vars if g is not None]
  if _replicas_in_sync() > 1 and pairs:
    summed = _sum_across_replicas([g for g, _ in pairs])
    pairs = list(zip(summed, [v for _, v in pairs]))
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


def _sum_across_replicas(tensors: list) -> list:
  """Each tensor summed over the replicas, in every replica.

  ReplicaContext.all_reduce would do this, but wraps it in a custom gradient
  that raises TypeError under central_storage in graph mode; no gradient
  flows through here, so a plain merge_call serves both strategies.
  """
  def batch_sum(strategy, *values):
    return strategy.extended.batch_reduce_to(
        tf.distribute.ReduceOp.SUM, [(v, v) for v in values])
  return list(tf.distribute.get_replica_context().merge_call(
      batch_sum, args=tuple(tensors)))


def per_replica_share(grads_and_vars):
  """Global-batch gradients divided among the replicas that apply_gradients sums."""
  n = _replicas_in_sync()
  if n == 1:
    return grads_and_vars
  return [(g / n, v) for g, v in grads_and_vars]


def decoupled_weight_decay(cfg: ExperimentConfig, variables, rate: tf.Tensor):
  """AdamW's decay, v <- v - wd * (rate / base) * v, applied after the step.

  Loshchilov & Hutter (2019) scale the decay by the schedule multiplier, not by
  the raw rate, so `optimizer.weight_decay` reads like a per-step fraction at
  the peak rate. It applies to the variables `train.weight_decay_on` picks
  (`variables` are the trainable ones). Set train.weight_decay=0 with adamw,
  or the L2 term in the loss decays the same weights a second time.
  """
  wd = cfg.optimizer.weight_decay
  if cfg.optimizer.name != "adamw" or wd <= 0:
    return tf.no_op()
  scale = wd * rate / base_learning_rate(cfg)
  return tf.group(*[v.assign_sub(scale * v) for v in
                    decayed_variables(variables, cfg.train.weight_decay_on)])
