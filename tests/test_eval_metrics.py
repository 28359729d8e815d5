"""Per-class accuracy, confusion matrix and ECE against hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from estimator_cifar.model import eval_metrics

v1 = tf.compat.v1
NAMES = ["cat", "dog", "sea lion"]


def _logits_for(predicted, num_classes=3):
  """Logits whose argmax is `predicted` (a clear margin)."""
  return np.eye(num_classes, dtype=np.float32)[predicted] * 4.0


def _evaluate(batches, names=NAMES):
  """Runs the metrics' update ops over `batches` of (labels, logits)."""
  with tf.Graph().as_default():
    labels = v1.placeholder(tf.int32, [None])
    logits = v1.placeholder(tf.float32, [None, batches[0][1].shape[1]])
    metrics = eval_metrics.failure_metrics(labels, logits, names)
    updates = [update for _, update in metrics.values()]
    with v1.Session() as sess:
      sess.run(v1.local_variables_initializer())
      for y, z in batches:
        sess.run(updates, {labels: y, logits: z})
      return sess.run({k: value for k, (value, _) in metrics.items()})


def test_per_class_accuracy_and_confusion_on_a_fixed_batch():
  # true:      cat cat dog dog sea sea sea
  # predicted: cat dog dog dog sea cat sea
  labels = np.array([0, 0, 1, 1, 2, 2, 2])
  predicted = np.array([0, 1, 1, 1, 2, 0, 2])
  # Two eval batches: the metrics accumulate over both.
  result = _evaluate([(labels[:3], _logits_for(predicted[:3])),
                      (labels[3:], _logits_for(predicted[3:]))])
  np.testing.assert_array_equal(result["confusion_matrix"],
                                [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
  assert result["confusion_matrix"].dtype == np.int64
  assert result["per_class_accuracy/cat"] == pytest.approx(0.5)
  assert result["per_class_accuracy/dog"] == pytest.approx(1.0)
  # A space in a class name becomes `_` in the metric name.
  assert result["per_class_accuracy/sea_lion"] == pytest.approx(2 / 3)


def test_a_class_absent_from_the_eval_data_scores_zero_not_nan():
  result = _evaluate([(np.array([0, 1]), _logits_for(np.array([0, 0])))])
  assert result["per_class_accuracy/sea_lion"] == 0.0
  assert result["per_class_accuracy/dog"] == 0.0
  assert result["per_class_accuracy/cat"] == 1.0


def test_names_default_when_missing_or_of_the_wrong_length():
  batch = [(np.array([0, 1]), _logits_for(np.array([0, 1])))]
  assert "per_class_accuracy/class_2" in _evaluate(batch, names=None)
  assert "per_class_accuracy/class_2" in _evaluate(batch, names=["a", "b"])


def _two_class_logits(confidence, predicted):
  """Logits whose softmax gives `confidence` to class `predicted` (of 2)."""
  gap = math.log(confidence / (1 - confidence))
  return np.array([[gap, 0.0] if p == 0 else [0.0, gap]
                   for p in predicted], np.float32)


def test_ece_closed_form_one_bin():
  # Every example at confidence c, a fraction a of them right: ECE = |a - c|.
  c, predicted = 0.8, np.zeros(10, int)
  labels = np.array([0] * 3 + [1] * 7)  # a = 0.3
  result = _evaluate([(labels, _two_class_logits(c, predicted))], ["a", "b"])
  assert result["ece"] == pytest.approx(abs(0.3 - 0.8), abs=1e-6)


def test_ece_by_hand_over_two_bins():
  # Confidences 0.9, 0.9 fall in bin (13/15, 14/15]; 0.6 and 0.55 in (8/15,
  # 9/15]. Each bin: accuracy 1/2, weight 2/4.
  # ECE = 2/4 * |0.5 - 0.9| + 2/4 * |0.5 - (0.6 + 0.55) / 2| = 0.2375.
  conf = [0.9, 0.9, 0.6, 0.55]
  logits = np.concatenate([_two_class_logits(c, [0]) for c in conf])
  labels = np.array([0, 1, 0, 1])
  result = _evaluate([(labels[:2], logits[:2]), (labels[2:], logits[2:])],
                     ["a", "b"])
  assert result["ece"] == pytest.approx(0.2375, abs=1e-6)


def test_ece_matches_a_numpy_reference_on_random_logits():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (200, 10)).astype(np.float32)
  labels = rng.integers(0, 10, 200)
  probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  conf, correct = probs.max(1), (probs.argmax(1) == labels)
  edges = np.linspace(0, 1, 16)
  expected = 0.0
  for lo, hi in zip(edges[:-1], edges[1:]):
    in_bin = (conf > lo) & (conf <= hi)
    if in_bin.any():
      expected += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
  result = _evaluate([(labels[:120], logits[:120]), (labels[120:], logits[120:])],
                     [str(i) for i in range(10)])
  assert result["ece"] == pytest.approx(expected, abs=1e-5)


def test_confusion_image_and_text_are_tensorboard_summaries():
  labels, predicted = np.array([0, 1, 2, 2]), np.array([0, 1, 2, 0])
  result = _evaluate([(labels, _logits_for(predicted))])
  image = summary_pb2.Summary.FromString(result["confusion_image"])
  assert image.value[0].image.height == image.value[0].image.width == 318
  text = summary_pb2.Summary.FromString(result["confusion_text"])
  table = tf.make_ndarray(text.value[0].tensor).item().decode()
  assert "| true \\ predicted | cat | dog | sea lion | accuracy |" in table
  assert "| sea lion | 1 | 0 | 1 | 0.500 |" in table
