"""`model_fn(features, labels, mode, params)`: the EstimatorSpec for every mode.

params: a `ModelParams` (the ExperimentConfig and the facts about the data and
the run that the graph needs); Estimator passes it through untouched.

TRAIN: (images and one-hot targets blended under `train.mixup_alpha`,
mixup.py) logits -> cross entropy (LOSSES) + weight decay (REGULARIZATION_LOSSES)
-> total loss -> gradients -> transforms -> apply_gradients, inside a control
dependency on this model's UPDATE_OPS (batch-norm statistics) -> then the
exponential moving average of the weights (num_updates = global step).
EVAL: accuracy, top-5 accuracy, exact mean cross entropy, and per-class
accuracy, confusion matrix and calibration (eval_metrics.py); outside TRAIN
the logits follow `eval.tta` (tta.py); with
`ema.eval_with_ema` the averaged weights are restored in place of the raw ones.
PREDICT/export: classes, probabilities, logits (EMA weights likewise).
In every mode the probabilities are softmax(logits / params.temperature), the
calibration temperature (model/temperature.py); classes and logits ignore it.
"""

import dataclasses

import tensorflow as tf
from absl import logging
from tensorflow.python.framework import config as tf_config

from estimator_cifar.config import ExperimentConfig
from estimator_cifar.model import eval_metrics as eval_metrics_lib
from estimator_cifar.model import mixup, nets, optim, summaries, tta
from estimator_cifar.model.keys import EMA_NAME, IMAGES_KEY

v1 = tf.compat.v1
ModeKeys = tf.estimator.ModeKeys

# Mixed precision: variables stay float32 (each cast at its point of use in
# model/nets/layers.py), convolutions and batch norm run in the compute dtype, the
# logits layer, the loss and the gradients' application in float32.
# mixed_float16 needs loss scaling (optim.build_optimizer adds a dynamic one);
# bfloat16 has float32's exponent range and needs none. Checked on CPU: the
# fused batch-norm kernel exists there for float16 and bfloat16 input alike
# (float32 statistics), so no fallback is needed. Only training runs in the
# mixed precision: evaluation, export and predict compute in float32, so the
# accuracy reported is the exported model's and any runtime can serve it.
COMPUTE_DTYPES = {"float32": tf.float32, "mixed_float16": tf.float16,
                  "mixed_bfloat16": tf.bfloat16}


@dataclasses.dataclass(frozen=True)
class ModelParams:
  """Estimator's `params` for model_fn: the config and facts about the run.

  Export and predict build only the PREDICT graph, which needs no schedule:
  the defaults of `steps_per_epoch` and `max_steps` serve them.
  `temperature`: the calibration temperature T; the returned probabilities
  (and the eval's calibration metrics) are softmax(logits / T); 1.0 =
  uncalibrated.
  """
  config: ExperimentConfig
  num_classes: int
  steps_per_epoch: float = 1.0
  max_steps: int = 1
  label_names: tuple[str, ...] = ()  # Names the per-class eval metrics.
  temperature: float = 1.0

  @classmethod
  def of(cls, params) -> "ModelParams":
    """`params` itself, or a dict with the same keys (direct callers)."""
    return params if isinstance(params, cls) else cls(**params)


def model_fn(features, labels, mode, params):
  """Builds the graph for `mode`; see the module docstring."""
  params = ModelParams.of(params)
  cfg = params.config
  images = features[IMAGES_KEY] if isinstance(features, dict) else features
  configure_determinism(cfg.train.seed)
  graph = v1.get_default_graph()
  # Gather only what this call adds: under a MirroredStrategy every replica
  # calls model_fn in the same graph, one after another.
  first = {key: len(graph.get_collection(key)) for key in
           (v1.GraphKeys.LOSSES, v1.GraphKeys.REGULARIZATION_LOSSES,
            v1.GraphKeys.UPDATE_OPS, v1.GraphKeys.ACTIVATIONS)}

  def added(key):
    return graph.get_collection(key)[first[key]:]

  network = nets.build(cfg.model, params.num_classes)
  training = mode == ModeKeys.TRAIN
  compute_dtype = _compute_dtype(cfg.train.precision) if training else tf.float32
  targets = None  # Blended one-hot targets under train.mixup_alpha.
  if training and cfg.train.mixup_alpha > 0:
    images, targets = mixup.mix(images, labels, params.num_classes,
                                cfg.train.mixup_alpha, cfg.train.seed or None)
  compute_images = tf.cast(images, compute_dtype)
  if training:
    logits = tf.cast(network(compute_images, True), tf.float32)
  else:  # eval.tta: the same averaging in eval, export and predict.
    logits = tta.logits(network, compute_images, cfg.eval.tta)
  activations = added(v1.GraphKeys.ACTIVATIONS)  # Before other replicas add theirs.
  predictions = {
      "classes": tf.argmax(logits, axis=1),
      "probabilities": tf.nn.softmax(logits / params.temperature),
      "logits": logits,
  }
  ema_scaffold = _ema_scaffold(cfg) if cfg.ema.eval_with_ema else None
  if mode == ModeKeys.PREDICT:
    return tf.estimator.EstimatorSpec(
        mode, predictions=predictions, scaffold=ema_scaffold,
        export_outputs={"serving_default":
                        tf.estimator.export.PredictOutput(predictions)})

  labels = tf.cast(labels, tf.int32)
  cross_entropy = _cross_entropy(labels, logits, params.num_classes,
                                 cfg.train.label_smoothing, targets)
  train_vars = optim.trainable_variables(cfg.train.trainable_scopes)
  _add_weight_decay(cfg, train_vars)
  weight_decay = tf.add_n(added(v1.GraphKeys.REGULARIZATION_LOSSES) or
                          [tf.constant(0.0)], name="weight_decay")
  total_loss = tf.add_n(added(v1.GraphKeys.LOSSES) + [weight_decay],
                        name="total_loss")

  if mode == ModeKeys.EVAL:
    return tf.estimator.EstimatorSpec(
        mode, loss=total_loss, scaffold=ema_scaffold,
        eval_metric_ops=dict(
            eval_metrics(labels, logits, params.num_classes),
            **eval_metrics_lib.failure_metrics(labels, logits,
                                               params.label_names,
                                               params.temperature)))

  global_step = v1.train.get_or_create_global_step()
  rate = optim.learning_rate(cfg, global_step, params.steps_per_epoch,
                             params.max_steps)
  optimizer = optim.build_optimizer(cfg, rate)
  grads_and_vars = optimizer.compute_gradients(total_loss, train_vars)
  grads_and_vars, grad_norm = optim.transform_gradients(cfg.train, grads_and_vars)
  # Batch-norm statistics of frozen layers stay frozen too.
  update_ops = [op for op in added(v1.GraphKeys.UPDATE_OPS)
                if optim.in_scopes(op.name, cfg.train.trainable_scopes)]
  with tf.control_dependencies(update_ops):
    step_op = optimizer.apply_gradients(optim.per_replica_share(grads_and_vars),
                                        global_step)
  with tf.control_dependencies([step_op]):
    train_op = tf.group(optim.decoupled_weight_decay(cfg, train_vars, rate))
  ema = None
  if cfg.ema.decay > 0:
    ema = v1.train.ExponentialMovingAverage(cfg.ema.decay, num_updates=global_step,
                                            name=EMA_NAME)
    with tf.control_dependencies([train_op]):
      train_op = _apply_ema(ema, v1.trainable_variables())
  loss_averages = summaries.train_summaries(
      cfg, images=images, labels=labels, logits=logits, rate=rate,
      cross_entropy=cross_entropy, weight_decay=weight_decay,
      total_loss=total_loss, grads_and_vars=grads_and_vars, grad_norm=grad_norm,
      ema=ema, activations=activations)
  train_op = tf.group(train_op, loss_averages)
  return tf.estimator.EstimatorSpec(mode, loss=total_loss, train_op=train_op,
                                    predictions=predictions)


def _compute_dtype(precision: str) -> tf.DType:
  """The dtype training computes in; float16 on a CPU is said once to be slow
  (no fast CPU kernel for its convolutions in TF 2.15)."""
  if precision not in COMPUTE_DTYPES:  # train.precision=auto, unresolved.
    raise ValueError(
        f"train.precision={precision} reached model_fn unresolved: build the "
        "Estimator with estimator_setup.make_estimator, which decides it.")
  if precision == "mixed_float16" and not tf.config.list_physical_devices("GPU"):
    logging.log_first_n(
        logging.WARNING, "train.precision=mixed_float16 without a GPU: TF "
        "emulates float16 convolutions on CPU, hundreds of times slower than "
        "float32. Use float32 or mixed_bfloat16 on CPU.", 1)
  return COMPUTE_DTYPES[precision]


def configure_determinism(seed: int) -> None:
  """With `train.seed` set: seed the graph and make TF's ops deterministic.

  A seed alone does not make two runs equal: parallel tf.data maps with
  random ops and some kernels' reduction orders vary from run to run. TF's op
  determinism switch removes those, at some cost in input-pipeline speed.
  It is process-wide, so an unseeded run switches it off again: with it
  on, any random op without a seed raises. Call it before building the input
  pipeline (modes.run does); model_fn calls it too, for direct users.
  """
  if seed:
    v1.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
  else:
    # TF 2.15 has no public switch-off; tf's own test_util calls this one.
    tf_config.disable_op_determinism()


def _apply_ema(ema, variables):
  """`ema.apply(variables)`, with v1 control flow while it builds.

  apply() makes one `cond` per variable to pick each shadow's initial value;
  as v2 control flow (TF2's default) each is a function graph to trace and
  instantiate, a visible share of the start-up before the first step. The v1
  cond computes the same value.
  """
  was_v2 = v1.control_flow_v2_enabled()
  v1.disable_control_flow_v2()
  try:
    return ema.apply(variables)
  finally:
    if was_v2:
      v1.enable_control_flow_v2()


def _cross_entropy(labels, logits, num_classes, label_smoothing, targets=None):
  """Mean cross entropy, registered in the LOSSES collection.

  `targets`: soft one-hot targets (mixup) in place of the labels' one-hot.
  """
  if targets is None:
    if label_smoothing <= 0:
      return v1.losses.sparse_softmax_cross_entropy(labels, logits)
    targets = tf.one_hot(labels, num_classes)
  return v1.losses.softmax_cross_entropy(targets, logits,
                                         label_smoothing=label_smoothing)


def _add_weight_decay(cfg: ExperimentConfig, variables) -> None:
  """Adds wd * l2_loss(v) to REGULARIZATION_LOSSES for `train.weight_decay_on`.

  l2_loss is sum(v ** 2) / 2, so the gradient gains wd * v: the meaning of
  weight decay in Caffe and Torch, where He et al.'s 1e-4 comes from.
  """
  wd = cfg.train.weight_decay
  if wd <= 0:
    return
  for v in optim.decayed_variables(variables, cfg.train.weight_decay_on):
    v1.add_to_collection(v1.GraphKeys.REGULARIZATION_LOSSES,
                         tf.multiply(wd, tf.nn.l2_loss(v),
                                     name=v.op.name.replace("/", "_") + "_decay"))


def eval_metrics(labels, logits, num_classes: int) -> dict:
  """accuracy, top_5_accuracy and the exact per-example mean cross entropy."""
  k = min(5, num_classes)
  per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                               logits=logits)
  return {
      "accuracy": v1.metrics.accuracy(labels, tf.argmax(logits, axis=1)),
      "top_5_accuracy": v1.metrics.mean(
          tf.cast(tf.math.in_top_k(labels, logits, k), tf.float32)),
      "cross_entropy": v1.metrics.mean(per_example),
  }


def _ema_scaffold(cfg: ExperimentConfig):
  """A Scaffold whose Saver loads each EMA shadow into its model variable.

  This is how the tutorial's cifar10_eval used the averaged weights: the graph
  is unchanged, only the restore mapping differs, so eval, predict and export
  all see the averaged values.
  """
  ema = v1.train.ExponentialMovingAverage(cfg.ema.decay, name=EMA_NAME)
  return v1.train.Scaffold(saver=v1.train.Saver(ema.variables_to_restore(),
                                                sharded=True))
