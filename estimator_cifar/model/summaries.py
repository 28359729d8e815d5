"""TensorBoard summaries built inside model_fn (train) under readable tags.

Three groups, by when they cost anything:
- Scalars and input images go into the default SUMMARIES collection, which
  Estimator merges into the Scaffold's summary op; its SummarySaverHook fetches
  that op every `summary.save_steps` steps (RunConfig.save_summary_steps).
- Histograms (weights, gradients, activations) go into HISTOGRAMS, fetched by
  `hooks.HistogramSaverHook` every `summary.histogram_steps` steps (0: every
  `save_steps`), so they can be thinned independently of the scalars.
- The loss moving averages are updated by an op that model_fn groups into the
  train op (about a dozen scalar ops per step): an average must see every step.

Everything else here (accuracy, zero fractions, norms, the histogram inputs)
is reachable only from the summary ops, so a step that writes no summary does
not compute it; tests/test_summaries.py checks this on the train op's graph.
The README's TensorBoard section lists every tag.
"""

import tensorflow as tf

from estimator_cifar.config import ExperimentConfig

v1 = tf.compat.v1

# Collection of the histogram summaries, written by hooks.HistogramSaverHook.
HISTOGRAMS = "estimator_cifar_histograms"
# The tensors the console hooks fetch (hooks.py): the total loss (one per
# replica under a distribution strategy) and the learning rate.
LOSS_COLLECTION = "estimator_cifar_total_loss"
LEARNING_RATE_COLLECTION = "estimator_cifar_learning_rate"

# The `losses/*_avg` tags: an exponential moving average over roughly the last
# 100 steps (the default summary interval), bias-corrected so that it is
# meaningful from the first step on, like the tutorial's _add_loss_summaries.
LOSS_AVERAGE_DECAY = 0.99
# Activation histograms use the first few examples of the batch: as
# informative for the shape of the distribution, and 16x cheaper than the
# whole batch of 128 (ResNet-20 has 19 ReLUs, 24M activations per batch).
HISTOGRAM_EXAMPLES = 8


def train_summaries(cfg: ExperimentConfig, *, images, labels, logits, rate,
                    cross_entropy, weight_decay, total_loss, grads_and_vars,
                    grad_norm, ema, activations=()) -> tf.Operation:
  """Adds every training summary and returns the loss-average update op.

  Args:
    cfg: the experiment (`summary.*` and `data.augment` are read).
    images: the distorted float input batch [N, H, W, 3].
    labels, logits: the batch's int labels [N] and float32 logits [N, C].
    rate: the learning-rate tensor.
    cross_entropy, weight_decay, total_loss: the scalar losses of the step.
    grads_and_vars: the (transformed) gradients the optimizer applies.
    grad_norm: global norm of the gradients before clipping.
    ema: the weights' ExponentialMovingAverage, or None.
    activations: ReLU outputs of this call's network (nets.build collects
      them into GraphKeys.ACTIVATIONS).

  Returns:
    An op that updates the loss moving averages; model_fn groups it into the
    train op so that the averages see every step.
  """
  v1.add_to_collection(LOSS_COLLECTION, total_loss)
  losses = {"cross_entropy": cross_entropy, "weight_decay": weight_decay,
            "total": total_loss}
  update, averages = _loss_averages(losses)
  if _replica_id() != 0:
    # Under a distribution strategy every replica builds the same summaries;
    # the first replica's are enough (and keep the tags free of prefixes).
    return update
  v1.add_to_collection(LEARNING_RATE_COLLECTION, rate)
  with tf.name_scope("summaries"):
    for name, loss in losses.items():
      _scalar(f"losses/{name}", loss)
      _scalar(f"losses/{name}_avg", averages[name])
    _scalar("learning_rate", rate)
    _accuracy_summaries(labels, logits)
    variables = [v for _, v in grads_and_vars]
    _scalar("gradients/global_norm", grad_norm)
    weights_norm = tf.linalg.global_norm(variables)
    _scalar("weights/global_norm", weights_norm)
    if ema is not None:
      _ema_summaries(ema, variables, weights_norm)
    for tensor in activations:
      _scalar(f"sparsity/{_layer_name(tensor)}", tf.math.zero_fraction(tensor))
    if cfg.summary.images and cfg.summary.max_images > 0:
      v1.add_to_collection(v1.GraphKeys.SUMMARIES, tf.raw_ops.ImageSummary(
          tag="input_images", max_images=cfg.summary.max_images,
          tensor=display_images(images, "standardize" in cfg.data.augment,
                                cfg.summary.max_images)))
    if cfg.summary.histograms:
      _histograms(grads_and_vars, activations)
  return update


def _scalar(tag: str, value: tf.Tensor) -> None:
  """A scalar summary under exactly `tag`.

  tf.compat.v1.summary.scalar derives the tag from a fresh name scope, which
  turns `learning_rate` into `learning_rate_1` when an op of that name exists.
  """
  v1.add_to_collection(v1.GraphKeys.SUMMARIES, tf.raw_ops.ScalarSummary(
      tags=tag, values=tf.cast(value, tf.float32)))


def _histogram(tag: str, values: tf.Tensor) -> None:
  """A histogram summary under exactly `tag`, into HISTOGRAMS."""
  v1.add_to_collection(HISTOGRAMS, tf.raw_ops.HistogramSummary(
      tag=tag, values=tf.cast(values, tf.float32)))


def _replica_id() -> int:
  """This model_fn call's replica (0 without a distribution strategy)."""
  context = tf.distribute.get_replica_context()
  if context is None:
    return 0
  replica = tf.get_static_value(context.replica_id_in_sync_group)
  return 0 if replica is None else int(replica)


def _loss_averages(losses: dict[str, tf.Tensor]):
  """Bias-corrected moving averages of `losses`: (update op, averages).

  Plain variables rather than tf.train.ExponentialMovingAverage: zero-debiased
  EMA creates its variables inside a merge_call, which distribution strategies
  handle badly. ON_READ/MEAN synchronization lets each replica update its own
  copy (a MirroredVariable would refuse an assign in replica context); without
  a strategy these are ordinary variables. They are global variables, saved in
  checkpoints, so the average continues across a resume; hooks'
  FiniteCheckpointGuard checks them before every save, and a non-finite loss
  turns them non-finite in the same step.
  """
  def variable(name):
    return v1.get_variable(
        name, [], tf.float32, v1.zeros_initializer(), trainable=False,
        synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.MEAN)

  with v1.variable_scope("loss_averages"):
    count = variable("count")
    biased = {name: variable(name) for name in losses}
  new_count = count.assign_add(1.0)
  correction = 1.0 - tf.pow(LOSS_AVERAGE_DECAY, new_count)
  updates, averages = [new_count], {}
  for name, loss in losses.items():
    new = biased[name].assign(LOSS_AVERAGE_DECAY * biased[name] +
                              (1.0 - LOSS_AVERAGE_DECAY) * tf.cast(loss, tf.float32))
    updates.append(new)
    # Read from the assign's output: consistent with `count` in the same step.
    averages[name] = new / correction
  return tf.group(*updates, name="loss_averages_update"), averages


def _accuracy_summaries(labels, logits) -> None:
  """Train-batch accuracy and top-5 from the forward pass already computed."""
  correct = tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels)
  _scalar("train/accuracy", tf.reduce_mean(tf.cast(correct, tf.float32)))
  k = min(5, logits.shape[-1])
  _scalar("train/top_5_accuracy", tf.reduce_mean(
      tf.cast(tf.math.in_top_k(labels, logits, k), tf.float32)))


def _ema_summaries(ema, variables, weights_norm) -> None:
  """How far the averaged weights are from the raw ones (global L2 norm)."""
  pairs = [(ema.average(v), v) for v in variables if ema.average(v) is not None]
  if not pairs:
    return
  difference = tf.linalg.global_norm([shadow - v for shadow, v in pairs])
  _scalar("ema/difference_norm", difference)
  _scalar("ema/relative_difference", difference / tf.maximum(weights_norm, 1e-12))


def _histograms(grads_and_vars, activations) -> None:
  """Weight, gradient and activation histograms into the HISTOGRAMS collection."""
  for grad, var in grads_and_vars:
    _histogram(f"weights/{var.op.name}", var)
    if isinstance(grad, tf.IndexedSlices):
      grad = grad.values
    _histogram(f"gradients/{var.op.name}", grad)
  for tensor in activations:
    _histogram(f"activations/{_layer_name(tensor)}", tensor[:HISTOGRAM_EXAMPLES])


def display_images(images: tf.Tensor, standardized: bool, count: int) -> tf.Tensor:
  """The first `count` images as uint8 for display.

  Per-image standardization cannot be inverted without each image's mean and
  deviation, so standardized images are stretched to the full 0..255 range per
  image (what the eye needs); images scaled to [0, 1] are shown as they are.
  """
  x = tf.cast(images[:count], tf.float32)
  if standardized:
    low = tf.reduce_min(x, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    x = (x - low) / tf.maximum(high - low, 1e-6)
  return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)


def _layer_name(tensor: tf.Tensor) -> str:
  return tensor.op.name
