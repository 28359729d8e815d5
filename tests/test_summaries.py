"""TensorBoard output: the tags a run writes, their values, and what they cost."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.model import summaries
from estimator_cifar.engine import modes
from estimator_cifar.model.model_fn import model_fn
from tests.testutil import PROGRESS, read_events, scalars, tiny_config

v1 = tf.compat.v1


@pytest.mark.slow
def test_train_and_eval_writes_every_tag(cifar10_dir, tmp_path, caplog):
  # The absl logger, by name: parsing absl flags (as in-process CLI tests do)
  # leaves it at WARNING, which would drop the INFO lines before caplog.
  caplog.set_level(logging.INFO, logger="absl")
  model_dir = str(tmp_path / "run")
  cfg = tiny_config()  # 6 steps, batch 16, summaries and progress every 5.
  modes.run(cfg, model_dir, "train_and_eval", cifar10_dir)
  events = read_events(model_dir)
  s = scalars(events)

  # Losses, raw and averaged; the average is bias-corrected (equal at step 1).
  for name in ("cross_entropy", "weight_decay", "total"):
    assert set(s[f"losses/{name}"]) == set(s[f"losses/{name}_avg"]) == {1, 6}
    assert s[f"losses/{name}_avg"][1] == pytest.approx(s[f"losses/{name}"][1],
                                                       rel=1e-5)
  for step in (1, 6):
    assert s["losses/total"][step] == pytest.approx(
        s["losses/cross_entropy"][step] + s["losses/weight_decay"][step], rel=1e-5)
    assert s["loss"][step] == pytest.approx(s["losses/total"][step], rel=1e-6)
    assert 0 <= s["train/accuracy"][step] <= s["train/top_5_accuracy"][step] <= 1
  # resnet_sgd: 0.1 x batch 16 / 128, piecewise multiplier 1.0 this early.
  assert s["learning_rate"][6] == pytest.approx(0.0125)
  assert s["gradients/global_norm"][6] > 0 and s["weights/global_norm"][6] > 0
  # EMA shadows start equal to the weights, then lag behind them.
  assert s["ema/difference_norm"][6] > 0
  assert 0 < s["ema/relative_difference"][6] < 1
  # Speed, from the progress hook: examples/sec = batch x global_step/sec.
  assert set(s["examples/sec"]) == {6}
  assert s["examples/sec"][6] == pytest.approx(16 * s["global_step/sec"][6],
                                               rel=1e-4)
  # Sparsity of every ReLU: a fraction.
  sparsity = [t for t in s if t.startswith("sparsity/tiny/")]
  assert sparsity and all(0 <= s[t][6] <= 1 for t in sparsity)

  # Histograms: weights (one count per element), gradients, activations.
  histo = {t: e[6].histo for t, e in events.items()
           if e.get(6) is not None and e[6].WhichOneof("value") == "histo"}
  assert histo["weights/tiny/logits/bias"].num == 10
  assert histo["gradients/tiny/logits/bias"].num == 10
  activations = [t for t in histo if t.startswith("activations/tiny/")]
  assert len(activations) == len(sparsity)
  assert all(histo[t].num > 0 and histo[t].min >= 0 for t in activations)

  # Input images: max_images of them, 32x32 RGB, stretched to the full range.
  images = [events[f"input_images/image/{i}"][6].image for i in range(3)]
  assert "input_images/image/3" not in events
  for image in images:
    pixels = tf.io.decode_png(image.encoded_image_string).numpy()
    assert pixels.shape == (32, 32, 3)
    assert pixels.min() == 0 and pixels.max() == 255

  # Eval summaries under <model_dir>/eval, written by Estimator.
  eval_scalars = scalars(read_events(os.path.join(model_dir, "eval")))
  assert {"accuracy", "top_5_accuracy", "cross_entropy", "loss"} <= set(eval_scalars)

  # Console: a progress line on the summary steps (1, 6), and not Estimator's
  # own `loss = ..., step = ...` / `global_step/sec:` lines.
  messages = [r.getMessage() for r in caplog.records]
  progress = [m for m in messages if m.startswith("step ")]
  assert progress[0].startswith("step 1/6, loss = ")
  assert [PROGRESS.fullmatch(m).group(1) for m in progress[1:]] == ["6"]
  assert PROGRESS.fullmatch(progress[1]).group(3) == "0.0125"
  assert not [m for m in messages if m.startswith(("loss = ", "global_step/sec"))]


@pytest.mark.slow
@pytest.mark.parametrize("overrides, histogram_steps, image_steps", [
    # Off: no histograms, no images; the scalars stay.
    (["summary.histograms=false", "summary.images=false"], set(), set()),
    # Thinned: histograms every 4 steps while scalars come every 2.
    (["summary.histogram_steps=4"], {1, 5}, {1, 3, 5}),
])
def test_histograms_and_images_switch_and_thin(cifar10_dir, tmp_path, overrides,
                                               histogram_steps, image_steps):
  cfg = tiny_config("summary.save_steps=2", "train.steps=6", *overrides)
  modes.run(cfg, str(tmp_path), "train", cifar10_dir)
  events = read_events(str(tmp_path))
  kinds = {}
  for by_step in events.values():
    for step, value in by_step.items():
      kinds.setdefault(value.WhichOneof("value"), set()).add(step)
  assert kinds.get("histo", set()) == histogram_steps
  assert kinds.get("image", set()) == image_steps
  assert set(events["losses/total"]) == {1, 3, 5}


@pytest.mark.slow
def test_train_step_computes_no_summary_inputs():
  """Summary-only work is unreachable from the train op: it runs only when a
  summary hook fetches it, every summary.save_steps, never on other steps."""
  cfg = tiny_config("model.name=resnet", "model.depth=8")
  with tf.Graph().as_default():
    spec = model_fn({"images": tf.random.uniform([4, 32, 32, 3])},
                    tf.constant([0, 1, 2, 3]), tf.estimator.ModeKeys.TRAIN,
                    {"config": cfg, "num_classes": 10, "steps_per_epoch": 10.0,
                     "max_steps": 100})
    step_ops = _ancestors([spec.train_op, spec.loss.op])
    summary_ops = [t.op for t in v1.get_collection(v1.GraphKeys.SUMMARIES) +
                   v1.get_collection(summaries.HISTOGRAMS)]
    only_summaries = _ancestors(summary_ops) - step_ops
    assert not [op.name for op in step_ops if op.name.startswith("summaries/")]
    assert {"HistogramSummary", "ImageSummary", "ScalarSummary"} <= \
        {op.type for op in only_summaries}
    # The zero fractions, accuracy, norms and image rescaling are summary-only.
    assert any("zero_fraction" in op.name for op in only_summaries)
    # The loss averages, by contrast, must see every step.
    names = {op.name for op in step_ops}
    assert "loss_averages_update" in names
    # ResNet-8 v1: the stem's ReLU and two per block in three stages.
    activations = v1.get_collection(v1.GraphKeys.ACTIVATIONS)
    assert len(activations) == 7


def _ancestors(ops) -> set:
  seen, stack = set(), list(ops)
  while stack:
    op = stack.pop()
    if op not in seen:
      seen.add(op)
      stack.extend(t.op for t in op.inputs)
      stack.extend(op.control_inputs)
  return seen


def test_display_images_stretch_standardized_only():
  standardized = tf.constant(np.linspace(-2, 3, 2 * 4 * 4 * 3, dtype=np.float32)
                             .reshape(2, 4, 4, 3))
  shown = summaries.display_images(standardized, True, 1).numpy()
  assert shown.shape == (1, 4, 4, 3) and shown.dtype == np.uint8
  assert shown.min() == 0 and shown.max() == 255
  scaled = tf.fill([2, 4, 4, 3], 0.5)
  assert np.all(summaries.display_images(scaled, False, 2).numpy() == 128)
