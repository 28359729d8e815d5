"""Eval metrics that show where a model fails: per class, confusion, calibration.

Added to the EVAL spec beside accuracy (model_fn.eval_metrics):
- `per_class_accuracy/<class name>`: the fraction of each true class predicted
  right (0 for a class absent from the eval split).
- `confusion_matrix`: int64 [C, C] counts, row = true class, column = predicted.
- `ece`: expected calibration error (Guo et al. 2017) of the returned
  probabilities, softmax(logits / T), over ECE_BINS equal-width bins of the
  top-class probability: sum over bins of |accuracy - mean confidence|
  weighted by the bin's share of the examples. A bin holds the confidences in
  (b / M, (b + 1) / M] (model/temperature.py bins the same way in numpy).
- `nll`: the mean negative log-likelihood of the returned probabilities (the
  `cross_entropy` metric stays that of the raw logits).
- `reliability`: float32 [3, ECE_BINS], the figures ECE is made of: per bin
  the share of the examples, and the means of correct * in_bin and of
  confidence * in_bin (rows SHARE_ROW, CORRECT_ROW,
  CONFIDENCE_ROW); rundir/reliability_plot.py draws it.
- With a calibration temperature T != 1, `ece_uncalibrated`,
  `nll_uncalibrated` and `reliability_uncalibrated`: the same of the raw
  logits, beside them.
- `confusion_image` and `confusion_text`: serialized TensorBoard summaries (a
  heat map with rows normalised to the true class, and a markdown table with
  the class names). Estimator writes byte-string metrics into the eval
  directory's events; metrics.jsonl and run_info.json leave them out (and
  keep the arrays, confusion_matrix and reliability, as lists).

Everything is built from tf.compat.v1.metrics (mean_tensor of the joint
distribution of true and predicted class, and of bin and correctness), so the
values aggregate correctly across eval batches and distribution replicas.
"""

import re

import tensorflow as tf

# The metric keys live TF-free in keys.py for the tools; callers take them
# from here too.
from estimator_cifar.model.keys import (CONFUSION_KEY, ECE_KEY,  # noqa: F401
                                        NLL_KEY, RELIABILITY_KEY,
                                        UNCALIBRATED_SUFFIX)
from estimator_cifar.model.temperature import (CONFIDENCE_ROW, CORRECT_ROW,
                                               ECE_BINS, SHARE_ROW)

v1 = tf.compat.v1

PER_CLASS_PREFIX = "per_class_accuracy/"
IMAGE_KEY = "confusion_image"
TEXT_KEY = "confusion_text"
# Heat-map cells are this many pixels wide at most, so 10 classes give a
# 320-pixel image and 100 classes a 300-pixel one.
IMAGE_SIDE = 320


def metric_name(label_name: str) -> str:
  """A class name as a metric/TensorBoard tag: anything odd becomes `_`."""
  return PER_CLASS_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "_", label_name)


def failure_metrics(labels: tf.Tensor, logits: tf.Tensor,
                    label_names: list[str] | None = None,
                    temperature: float = 1.0) -> dict:
  """Per-class accuracy, confusion matrix, calibration and their summaries.

  Args:
    labels: int labels [N].
    logits: float32 logits [N, C].
    label_names: C class names; `class_<i>` when None or of the wrong length.
    temperature: the calibration temperature T of the returned probabilities,
      softmax(logits / T); 1.0 for uncalibrated ones.

  Returns:
    A dict of eval_metric_ops (value, update_op), see the module docstring.
  """
  num_classes = int(logits.shape[-1])
  if not label_names or len(label_names) != num_classes:
    label_names = [f"class_{i}" for i in range(num_classes)]
  labels = tf.cast(labels, tf.int32)
  predicted = tf.argmax(logits, axis=1, output_type=tf.int32)
  joint = (tf.one_hot(labels, num_classes)[:, :, None] *
           tf.one_hot(predicted, num_classes)[:, None, :])
  fractions, update_joint = _mean_over_examples(joint, "confusion")
  # The number of examples seen, to turn fractions back into counts.
  count, update_count = v1.metrics.true_positives(
      tf.ones_like(labels, tf.bool), tf.ones_like(labels, tf.bool),
      name="eval_examples")
  counts = tf.cast(tf.round(fractions * count), tf.int64)
  update = tf.group(update_joint, update_count)

  per_class = tf.math.divide_no_nan(tf.linalg.diag_part(fractions),
                                    tf.reduce_sum(fractions, axis=1))
  metrics = {metric_name(name): (per_class[i], update)
             for i, name in enumerate(label_names)}
  metrics[CONFUSION_KEY] = (counts, update)
  metrics.update(calibration_metrics(labels, logits / temperature))
  if temperature != 1.0:
    metrics.update(calibration_metrics(labels, logits, UNCALIBRATED_SUFFIX))
  metrics[IMAGE_KEY] = (_image_summary(fractions), update)
  metrics[TEXT_KEY] = (_text_summary(counts, per_class, label_names), update)
  return metrics


def calibration_metrics(labels: tf.Tensor, logits: tf.Tensor,
                        suffix: str = "", num_bins: int = ECE_BINS) -> dict:
  """`ece`, `nll` and `reliability` (+ suffix) of softmax(logits) vs labels.

  Returns:
    A dict of eval_metric_ops (value, update_op), see the module docstring.
  """
  labels = tf.cast(labels, tf.int32)
  probabilities = tf.nn.softmax(logits)
  confidence = tf.reduce_max(probabilities, axis=1)
  correct = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32),
                             labels), tf.float32)
  bins = tf.clip_by_value(
      tf.cast(tf.math.ceil(confidence * num_bins), tf.int32) - 1, 0,
      num_bins - 1)
  in_bin = tf.one_hot(bins, num_bins)
  # Per bin: its share, E[correct * 1(bin)] and E[confidence * 1(bin)]; the
  # gap of the last two is the bin's |accuracy - confidence| times its share.
  rows = {SHARE_ROW: in_bin, CORRECT_ROW: in_bin * correct[:, None],
          CONFIDENCE_ROW: in_bin * confidence[:, None]}
  stacked = tf.stack([rows[i] for i in sorted(rows)], axis=1)
  reliability, update = _mean_over_examples(stacked,
                                            RELIABILITY_KEY + suffix)
  ece = tf.reduce_sum(tf.abs(reliability[CORRECT_ROW] -
                             reliability[CONFIDENCE_ROW]))
  nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                       logits=logits)
  return {ECE_KEY + suffix: (ece, update),
          NLL_KEY + suffix: v1.metrics.mean(nll, name=NLL_KEY + suffix),
          RELIABILITY_KEY + suffix: (reliability, update)}


def _mean_over_examples(values: tf.Tensor, name: str):
  """(mean, update_op) of values [N, ...] over every example seen.

  mean_tensor averages whole tensors call by call, so each batch enters as its
  mean weighted by its size: batches of unequal size count per example.
  """
  size = tf.cast(tf.shape(values)[0], tf.float32)
  batch_mean = tf.reduce_mean(values, axis=0)
  return v1.metrics.mean_tensor(batch_mean, tf.fill(tf.shape(batch_mean), size),
                                name=name)


def _image_summary(fractions: tf.Tensor) -> tf.Tensor:
  """A heat map of the confusion matrix, each row normalised to sum to 1."""
  num_classes = int(fractions.shape[0])
  rows = tf.math.divide_no_nan(fractions,
                               tf.reduce_sum(fractions, axis=1, keepdims=True))
  cell = max(1, IMAGE_SIDE // num_classes)
  big = tf.repeat(tf.repeat(rows, cell, axis=0), cell, axis=1)
  # White (0) to dark blue (1).
  white_to_blue = tf.constant([235.0, 200.0, 100.0])
  rgb = 255.0 - big[:, :, None] * white_to_blue
  image = tf.cast(tf.clip_by_value(rgb, 0, 255), tf.uint8)[None]
  return v1.summary.image("confusion_matrix", image, max_outputs=1,
                          collections=[])


def _text_summary(counts: tf.Tensor, per_class: tf.Tensor,
                  label_names: list[str]) -> tf.Tensor:
  """A markdown table: one row per true class, its counts and accuracy."""
  header = ("| true \\ predicted | " + " | ".join(label_names) +
            " | accuracy |\n|" + "---|" * (len(label_names) + 2))
  cells = tf.strings.reduce_join(tf.strings.as_string(counts), axis=1,
                                 separator=" | ")
  accuracy = tf.strings.as_string(per_class, precision=3)
  rows = tf.strings.join(["| ", tf.constant(label_names), " | ", cells, " | ",
                          accuracy, " |"])
  table = tf.strings.reduce_join(tf.concat([[header], rows], 0),
                                 separator="\n")
  return v1.summary.text("confusion_matrix", table, collections=[])
