"""Fits a checkpoint's calibration temperature on the validation split.

The checkpoint's logits of every validation image (in record order, as the
validation input_fn keeps it) and the split's labels go to
model/temperature.fit; the figures before and after tell whether it helped.
rundir/calibration.py stores the result beside the checkpoints.
"""

import numpy as np
import tensorflow as tf

from estimator_cifar.data import validation_split
from estimator_cifar.data.source import VALIDATION, DataSource
from estimator_cifar.model import temperature as temperature_lib


def validation_labels(source: DataSource) -> np.ndarray:
  """The validation split's int labels [N], in record order."""
  return validation_split.labels_of(source, VALIDATION)


def fit_checkpoint(estimator: tf.estimator.Estimator, validation_input_fn,
                   labels: np.ndarray, checkpoint: str) -> dict:
  """Fits the temperature of `checkpoint` on the validation split.

  Args:
    estimator: the run's Estimator (its model_fn gives `logits`).
    validation_input_fn: an input_fn over the validation images, in the
      order of `labels`, each once.
    labels: the validation labels (`validation_labels`).
    checkpoint: the checkpoint path to predict with.

  Returns:
    {"temperature", "images", "nll_before", "nll_after", "ece_before",
    "ece_after"}: T and the validation NLL and ECE at T = 1 and at T.

  Raises:
    ValueError: the input_fn gave a different number of images than there
      are labels, or the logits cannot be fitted (model/temperature.py).
  """
  batches = estimator.predict(validation_input_fn, predict_keys=["logits"],
                              checkpoint_path=checkpoint,
                              yield_single_examples=False)
  logits = [batch["logits"] for batch in batches]
  if not logits or sum(len(b) for b in logits) != len(labels):
    raise ValueError(
        f"the validation input gave {sum(len(b) for b in logits)} images for "
        f"{len(labels)} labels: it must give each validation image once, in "
        f"record order, to fit a temperature.")
  logits = np.concatenate(logits)
  fitted = temperature_lib.fit(logits, labels)
  return {
      "temperature": fitted,
      "images": len(labels),
      "nll_before": temperature_lib.nll(logits, labels),
      "nll_after": temperature_lib.nll(logits, labels, fitted),
      "ece_before": temperature_lib.ece(logits, labels),
      "ece_after": temperature_lib.ece(logits, labels, fitted),
  }
