"""`<model_dir>/eval/confusion.png`: the confusion matrix of an evaluation.

Drawn with matplotlib after `--mode=eval` from the eval result's
`confusion_matrix` counts (model/eval_metrics.py), rows normalised to the true
class, each cell labelled with its count when there are at most
MAX_ANNOTATED classes. Without matplotlib the plot is skipped with one log
line and the evaluation is unaffected (rundir/plots.py).

Imports no TensorFlow.
"""

import os

from estimator_cifar import rundir
from estimator_cifar.rundir import plots

FILENAME = "confusion.png"
MAX_ANNOTATED = 20  # Counts written in the cells up to this many classes.


def path(model_dir: str) -> str:
  return os.path.join(model_dir, rundir.EVAL_DIR, FILENAME)


def write(model_dir: str, counts, label_names: list[str],
          title: str = "") -> str | None:
  """Writes the plot of `counts` [C, C] (row = true class); returns its path.

  Returns None, after logging why, when matplotlib is missing.
  """
  plt = plots.pyplot(path(model_dir))
  if plt is None:
    return None
  import numpy as np
  counts = np.asarray(counts, dtype=np.int64)
  n = counts.shape[0]
  names = label_names if len(label_names) == n else [str(i) for i in range(n)]
  totals = counts.sum(axis=1, keepdims=True)
  rows = np.divide(counts, totals, out=np.zeros(counts.shape, float),
                   where=totals > 0)
  side = max(5.0, min(20.0, 0.45 * n + 2))
  fig, ax = plt.subplots(figsize=(side, side))
  ax.imshow(rows, cmap="Blues", vmin=0.0, vmax=1.0)
  ax.set_xticks(range(n))
  ax.set_yticks(range(n))
  ax.set_xticklabels(names, rotation=90, fontsize=8)
  ax.set_yticklabels(names, fontsize=8)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  if title:
    ax.set_title(title)
  if n <= MAX_ANNOTATED:
    for i in range(n):
      for j in range(n):
        ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                color="white" if rows[i, j] > 0.5 else "black")
  return plots.save(plt, fig, path(model_dir))
