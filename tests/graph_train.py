"""Trains a config in-process for a few steps, without an Estimator.

Estimator runs cost seconds of session, checkpoint and hook set-up each; the
recipe tests train dozens of short runs, so they drive `model_fn` directly in a
plain graph and session. The train graph is exactly the Estimator's: the same
input_fn and model_fn(TRAIN); evaluation reuses the trained variables through
model_fn(PREDICT) on the test split.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from estimator_cifar.data import sources
from estimator_cifar.data.input_pipeline import make_input_fn
from estimator_cifar.model.model_fn import configure_determinism, model_fn

v1 = tf.compat.v1
ModeKeys = tf.estimator.ModeKeys


@dataclasses.dataclass
class Result:
  losses: list[float]            # Total loss at each step (before its update).
  rates: list[float]             # Learning rate at each step.
  before: dict[str, np.ndarray]  # Global variables before training.
  after: dict[str, np.ndarray]   # ... and after.
  accuracy: float | None         # Test-split accuracy (PREDICT mode), if asked.
  train_accuracy: float | None   # The same on the training split, if asked.


def train(cfg, data_dir: str, steps: int, evaluate: bool = True,
          evaluate_train: bool = False, check_graph=None) -> Result:
  """Runs `steps` train steps of `cfg` on the data in `data_dir`.

  `check_graph(graph)`, if given, is called once the train graph is built.
  """
  configure_determinism(cfg.train.seed)  # As modes.run does, first.
  source = sources.get_source(cfg, data_dir)
  params = {"config": cfg, "num_classes": source.num_classes,
            "steps_per_epoch": source.num_train / cfg.train.batch_size,
            "max_steps": steps}
  with tf.Graph().as_default():
    if cfg.train.seed:
      v1.set_random_seed(cfg.train.seed)
    features, labels = v1.data.make_one_shot_iterator(
        make_input_fn(cfg, source, training=True)()).get_next()
    spec = model_fn(features, labels, ModeKeys.TRAIN, params)
    rate = v1.get_default_graph().get_tensor_by_name("scheduled_learning_rate:0")
    if check_graph is not None:
      check_graph(v1.get_default_graph())
    splits = (["test"] if evaluate else []) + (["train"] if evaluate_train else [])
    evals = {}
    for split in splits:
      # The eval input_fn reads "test"; point it at `split`.
      view = dataclasses.replace(source, records=lambda _, s=split: source.records(s))
      eval_features, eval_labels = v1.data.make_one_shot_iterator(
          make_input_fn(cfg, view, training=False)()).get_next()
      with v1.variable_scope(v1.get_variable_scope(), reuse=True):
        evals[split] = (model_fn(eval_features, None, ModeKeys.PREDICT,
                                 params).predictions["classes"], eval_labels)
    variables = v1.global_variables()
    with v1.Session() as sess:
      sess.run([v1.global_variables_initializer(),
                v1.local_variables_initializer()])
      before = dict(zip([v.op.name for v in variables], sess.run(variables)))
      losses, rates = [], []
      for _ in range(steps):
        _, loss, lr = sess.run([spec.train_op, spec.loss, rate])
        losses.append(float(loss))
        rates.append(float(lr))
      after = dict(zip([v.op.name for v in variables], sess.run(variables)))
      accuracy = {split: _accuracy(sess, *evals[split]) for split in splits}
  return Result(losses, rates, before, after, accuracy.get("test"),
                accuracy.get("train"))


def _accuracy(sess, classes, labels) -> float:
  correct = total = 0
  while True:
    try:
      predicted, truth = sess.run([classes, labels])
    except tf.errors.OutOfRangeError:
      return correct / total
    correct += int(np.sum(predicted == truth))
    total += len(truth)
