"""`<model_dir>/eval/reliability.png`: the reliability diagram of an evaluation.

Drawn with matplotlib from the eval result's `reliability` bin figures
(model/eval_metrics.py): per confidence bin holding examples, the accuracy
against the mean confidence, with the diagonal of perfect calibration and the
ECE in the legend. With a calibration temperature the raw logits' figures
(`reliability_uncalibrated`) are drawn beside. Without matplotlib the plot is
skipped with one log line (rundir/plots.py).

Imports no TensorFlow.
"""

import os

import numpy as np

from estimator_cifar import rundir
from estimator_cifar.model import temperature
from estimator_cifar.rundir import plots

FILENAME = "reliability.png"


def path(model_dir: str) -> str:
  return os.path.join(model_dir, rundir.EVAL_DIR, FILENAME)


def write(model_dir: str, reliability, uncalibrated=None,
          title: str = "") -> str | None:
  """Draws the diagram of bin figures [3, M]; returns the PNG's path.

  Args:
    model_dir: the run's model_dir.
    reliability: the returned probabilities' `reliability` eval metric.
    uncalibrated: the raw logits' (`reliability_uncalibrated`), or None.
    title: the plot's title.

  Returns:
    The path written, or None, after logging why, when matplotlib is missing.
  """
  plt = plots.pyplot(path(model_dir))
  if plt is None:
    return None
  fig, ax = plt.subplots(figsize=(5.5, 5.5))
  ax.plot([0, 1], [0, 1], color="gray", linestyle=":", label="perfect calibration")
  curves = [("uncalibrated", uncalibrated, "tab:orange"),
            ("calibrated" if uncalibrated is not None else "model",
             reliability, "tab:blue")]
  for name, statistics, color in curves:
    if statistics is None:
      continue
    confidence, accuracy = points(statistics)
    ece = temperature.ece_of_bins(statistics)
    ax.plot(confidence, accuracy, marker="o", color=color,
            label=f"{name} (ECE {ece:.4f})")
  ax.set_xlim(0, 1)
  ax.set_ylim(0, 1)
  ax.set_xlabel("mean confidence in bin")
  ax.set_ylabel("accuracy in bin")
  ax.legend(loc="upper left")
  if title:
    ax.set_title(title)
  return plots.save(plt, fig, path(model_dir))


def points(statistics) -> tuple[np.ndarray, np.ndarray]:
  """(mean confidence, accuracy) of each bin that holds examples, in bin order."""
  statistics = np.asarray(statistics, np.float64)
  share = statistics[temperature.SHARE_ROW]
  held = share > 0
  return (statistics[temperature.CONFIDENCE_ROW][held] / share[held],
          statistics[temperature.CORRECT_ROW][held] / share[held])
