"""`<model_dir>/eval/confusion.png`: the confusion matrix of an evaluation.

Drawn with matplotlib after `--mode=eval` from the eval result's
`confusion_matrix` counts (model/eval_metrics.py), rows normalised to the true
class, each cell labelled with its count when there are at most
MAX_ANNOTATED classes. matplotlib comes with the `test`/`tools` extras; without
it the plot is skipped with one log line and the evaluation is unaffected.

Imports no TensorFlow.
"""

import os

from absl import logging

from estimator_cifar import rundir

FILENAME = "confusion.png"
MAX_ANNOTATED = 20  # Counts written in the cells up to this many classes.


def path(model_dir: str) -> str:
  return os.path.join(model_dir, rundir.EVAL_DIR, FILENAME)


def write(model_dir: str, counts, label_names: list[str],
          title: str = "") -> str | None:
  """Writes the plot of `counts` [C, C] (row = true class); returns its path.

  Returns None, after logging why, when matplotlib is missing.
  """
  try:
    import matplotlib
    matplotlib.use("Agg")  # No display: write files only.
    import matplotlib.pyplot as plt
  except ImportError:
    logging.warning("matplotlib is not installed, so %s was not drawn "
                    "(pip install matplotlib, or the package's [tools] "
                    "extra).", path(model_dir))
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
  fig.tight_layout()
  out = path(model_dir)
  os.makedirs(os.path.dirname(out), exist_ok=True)
  tmp = out + ".tmp.png"
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  os.replace(tmp, out)
  return out
