"""`train.steps_per_loop=K`: K training steps inside one `session.run`.

Every `session.run` of an Estimator pays a fixed host cost (the run call,
feeds and fetches, every hook's Python) that a fast accelerator waits on. As
TPUEstimator's `iterations_per_loop` did, this runs K steps in a `tf.while_loop`
so that the cost is paid once per K steps:

- the train input yields K batches stacked (`stack_batches`: `batch(K)` over
  the batches), features [K, B, H, W, 3] and labels [K, B];
- the loop body slices batch k and calls the ordinary `model_fn` on it, so
  each iteration is exactly one step: forward, losses, gradient transforms,
  `apply_gradients` after the step's UPDATE_OPS (which advances the global
  step), then the EMA update;
- a loop stops early at `max_steps`, so a `max_steps` that is not a multiple
  of K ends with a shorter loop (one more empty run lets Estimator's stop hook
  see the final step).

What the hooks see, once per loop: the loss of the loop's last step (or the
first non-finite one of the loop, so the NaN checks still fire), the learning
rate of that step, and the summaries of that step. Tensors of one iteration
cannot be fetched from outside the loop, so each value is copied into a local
(never checkpointed) variable and the summary ops, rebuilt outside the loop,
read those after it. The copies, and whatever only the summaries need, run
in the loop's last iteration only. docs/scaling.md lists what changes for
users; the Estimator's own summary hook is replaced (hooks.train_hooks).
"""

import tensorflow as tf
from tensorflow.python.ops import control_flow_ops

from estimator_cifar import loop_support
from estimator_cifar.errors import ConfigError
from estimator_cifar.model import summaries
from estimator_cifar.model.keys import IMAGES_KEY
from estimator_cifar.model.model_fn import ModelParams

v1 = tf.compat.v1
ModeKeys = tf.estimator.ModeKeys

# Summary op types rebuilt outside the loop, and the index of their value input.
_SUMMARY_VALUE_INPUT = {"ScalarSummary": 1, "HistogramSummary": 1,
                        "ImageSummary": 1}


def stack_batches(input_fn, steps_per_loop: int):
  """The train input_fn, its batches grouped K at a time (K = steps_per_loop)."""
  if steps_per_loop <= 1:
    return input_fn

  def stacked_input_fn(params=None):
    dataset = input_fn(params=params)
    return dataset.batch(steps_per_loop, drop_remainder=True).prefetch(1)

  return stacked_input_fn


def looped(model_fn, steps_per_loop: int):
  """`model_fn`, with TRAIN running `steps_per_loop` steps per session.run."""
  if steps_per_loop <= 1:
    return model_fn

  def looped_model_fn(features, labels, mode, params, config):
    if mode != ModeKeys.TRAIN:
      return model_fn(features, labels, mode, params)
    if config is not None and config.cluster_spec.as_dict().get("ps"):
      raise ConfigError(loop_support.refused_on_ps(steps_per_loop))
    return _train_loop(model_fn, features, labels, params, steps_per_loop)

  return looped_model_fn


def _train_loop(model_fn, features, labels, params, steps_per_loop):
  """The TRAIN EstimatorSpec of K steps of `model_fn` in a while loop."""
  images = features[IMAGES_KEY] if isinstance(features, dict) else features
  graph = v1.get_default_graph()
  sizes = {key: len(graph.get_collection(key))
           for key in graph.get_all_collection_keys()}
  global_step = v1.train.get_or_create_global_step()
  # Stop at max_steps: the last loop of a run may be shorter than K.
  max_steps = ModelParams.of(params).max_steps
  left = tf.cast(max_steps, tf.int64) - global_step.read_value()
  count = tf.cast(tf.clip_by_value(left, 0, steps_per_loop), tf.int32)
  carried = {}  # Filled while the body is built: loop tensor -> variable.

  def body(i):
    first_op = len(graph.get_operations())
    with v1.variable_creator_scope(_named_as_outside):
      spec = model_fn({IMAGES_KEY: images[i]}, labels[i], ModeKeys.TRAIN, params)
    step_ops = graph.get_operations()[first_op:]
    is_last = tf.equal(i + 1, count)
    assigns = _carry(graph, sizes, spec, step_ops, is_last, carried)
    with tf.control_dependencies([spec.train_op, assigns]):
      return i + 1

  was_v2 = v1.control_flow_v2_enabled()
  # v1 control flow: variables created in the body (through init_scope) and
  # gradients taken within one iteration both work there.
  v1.disable_control_flow_v2()
  try:
    done, = tf.while_loop(lambda i: i < count, body, [tf.constant(0)],
                         parallel_iterations=1, back_prop=False,
                         name="train_loop")
  finally:
    if was_v2:
      v1.enable_control_flow_v2()
  with tf.control_dependencies([done]):
    train_op = tf.group(done, name="train_loop_done")
    loss = tf.identity(carried["loss"].read_value(), name="loop_loss")
  _rebuild_outside(graph, sizes, carried, done)
  return tf.estimator.EstimatorSpec(ModeKeys.TRAIN, loss=loss, train_op=train_op)


def _named_as_outside(next_creator, **kwargs):
  """Creates a variable outside the loop's name scopes.

  Variables made with tf.Variable (Adam's beta powers, the loss scale) take
  the current name scope, here the loop's and its conds'; checkpoints must
  name them as a step built outside a loop does, or they would not restore
  across a change of steps_per_loop. Names from get_variable are whole
  already.
  """
  with v1.get_default_graph().name_scope(None):
    return next_creator(**kwargs)


def _carry(graph, sizes, spec, step_ops, is_last, carried) -> tf.Tensor:
  """Copies, in the body, every value the hooks and summaries fetch.

  The loss is copied in every iteration and kept sticky: once a step's loss
  is not finite the loop reports that value, so a NaN in any step reaches the
  NaN checks. The other values are copied in the loop's last iteration only,
  and what only they need is computed then only (see `_only_when`), as a
  K=1 step computes its summaries only when they are written.

  Returns:
    A tensor that is ready once this iteration's copies are done.
  """
  loss_var = _local_variable("loss", spec.loss)
  previous = loss_var.read_value()
  copies = [loss_var.assign(
      tf.where(tf.math.is_finite(previous), spec.loss, previous))]
  carried["loss"] = loss_var
  values = []
  for key in (v1.GraphKeys.SUMMARIES, summaries.HISTOGRAMS,
              summaries.LEARNING_RATE_COLLECTION):
    for item in graph.get_collection(key)[sizes.get(key, 0):]:
      tensor = item.op.inputs[_SUMMARY_VALUE_INPUT[item.op.type]] \
          if item.op.type in _SUMMARY_VALUE_INPUT else item
      if tensor.ref() not in carried:
        carried[tensor.ref()] = _local_variable(tensor.op.name, tensor)
        values.append(tensor)
  _only_when(is_last, values, step_ops, [spec.train_op, spec.loss])
  last_copies = [carried[t.ref()].assign(_switch(t, is_last)[1], read_value=False)
                 for t in values]
  # A v1 cond by hand: the Merge is ready in every iteration, whether the
  # copies ran (last iteration) or were skipped as dead branches.
  skipped, taken = _switch(tf.constant(0), is_last)
  with tf.control_dependencies(last_copies):
    taken = tf.identity(taken)
  with tf.control_dependencies(copies):
    return control_flow_ops.merge([skipped, taken])[0]


def _switch(tensor, pred):
  """(output if pred is false, output if true): v1 control flow's Switch."""
  return control_flow_ops.switch(tensor, pred)


def _only_when(pred, values, step_ops, step_outputs) -> None:
  """Rewires the ops that only `values` need to run only when `pred` holds.

  Those ops (summary inputs: norms, sparsities, accuracies, histogram
  inputs) are the ones among `step_ops` that the step's own outputs do not
  need. Each input they take from outside that set goes through a Switch on
  `pred`: in other iterations it is dead, and so are they, so they do not
  run.
  """
  step_set = set(step_ops)
  needed = _ancestors([t.op if isinstance(t, tf.Tensor) else t
                       for t in step_outputs], step_set)
  extra = _ancestors([t.op for t in values], step_set) - needed
  switched = {}
  for op in extra:
    for index, tensor in enumerate(op.inputs):
      if tensor.op in extra:
        continue
      if tensor.ref() not in switched:
        switched[tensor.ref()] = _switch(tensor, pred)[1]
      op._update_input(index, switched[tensor.ref()])  # pylint: disable=protected-access


def _ancestors(ops, within: set) -> set:
  """`ops` and every op in `within` they depend on (data or control)."""
  seen, stack = set(), [op for op in ops if op in within]
  while stack:
    op = stack.pop()
    if op in seen:
      continue
    seen.add(op)
    stack.extend(p for p in [t.op for t in op.inputs] + list(op.control_inputs)
                 if p in within and p not in seen)
  return seen


def _local_variable(name: str, like: tf.Tensor) -> tf.Variable:
  """A local (never checkpointed) zeros variable shaped like `like`."""
  static = like.shape.is_fully_defined()
  with tf.init_scope():
    return v1.Variable(tf.zeros(like.shape if static else [], like.dtype),
                       trainable=False, name="train_loop_carry/" + name,
                       shape=like.shape if static else tf.TensorShape(None),
                       collections=[v1.GraphKeys.LOCAL_VARIABLES])


def _rebuild_outside(graph, sizes, carried, done) -> None:
  """Replaces the body's collection entries with reads after the loop.

  Tensors and ops created in the loop body cannot be fetched from outside it,
  so every such entry is dropped from the graph's collections; the summaries,
  the loss and the learning rate come back as ops that read the carried
  values once the loop is done.
  """
  rebuilt = {}
  for key in graph.get_all_collection_keys():
    entries = graph.get_collection_ref(key)
    added = entries[sizes.get(key, 0):]
    keep = [e for e in added if not _in_loop(e)]
    inside = [e for e in added if _in_loop(e)]
    del entries[sizes.get(key, 0):]
    entries.extend(keep)
    rebuilt[key] = inside
  with tf.control_dependencies([done]), tf.name_scope("train_loop_summaries"):
    for key in (v1.GraphKeys.SUMMARIES, summaries.HISTOGRAMS):
      for entry in rebuilt.get(key, []):
        op = entry.op
        if op.type not in _SUMMARY_VALUE_INPUT:  # Carried as a whole string.
          v1.add_to_collection(key, carried[entry.ref()].read_value())
          continue
        value = carried[op.inputs[_SUMMARY_VALUE_INPUT[op.type]].ref()].read_value()
        tag = tf.get_static_value(op.inputs[0])
        if op.type == "ScalarSummary":
          out = tf.raw_ops.ScalarSummary(tags=tag, values=value)
        elif op.type == "HistogramSummary":
          out = _finite_histogram(tag, value)
        else:
          out = tf.raw_ops.ImageSummary(
              tag=tag, tensor=value, max_images=op.get_attr("max_images"),
              bad_color=op.get_attr("bad_color"))
        v1.add_to_collection(key, out)
    v1.add_to_collection(summaries.LOSS_COLLECTION,
                         carried["loss"].read_value())
    for tensor in rebuilt.get(summaries.LEARNING_RATE_COLLECTION, []):
      v1.add_to_collection(summaries.LEARNING_RATE_COLLECTION,
                           carried[tensor.ref()].read_value())


def _finite_histogram(tag, value) -> tf.Tensor:
  """A histogram summary, or none while `value` holds NaN or Inf.

  The histogram op fails on NaN; the loss check (hooks.NanGuardHook) must be
  the one to report a diverged loop, with its message, after this run.
  """
  return tf.cond(tf.reduce_all(tf.math.is_finite(value)),
                 lambda: tf.raw_ops.HistogramSummary(tag=tag, values=value),
                 lambda: tf.constant(""))


def _in_loop(entry) -> bool:
  op = getattr(entry, "op", entry)
  return isinstance(op, tf.Operation) and \
      op._get_control_flow_context() is not None  # pylint: disable=protected-access
