"""What every plot of the model_dir shares: pyplot, or why not, and the save.

matplotlib comes with the `test`/`tools` extras; without it a plot is skipped
with one log line naming the file, and the run is unaffected.

Imports no TensorFlow.
"""

import os

from absl import logging


def pyplot(out_path: str):
  """matplotlib.pyplot on the file-only Agg backend; None (logged) if missing.

  Args:
    out_path: the plot that would be drawn, named in the log line.
  """
  try:
    import matplotlib
    matplotlib.use("Agg")  # No display: write files only.
    import matplotlib.pyplot as plt
  except ImportError:
    logging.warning("matplotlib is not installed, so %s was not drawn "
                    "(pip install matplotlib, or the package's [tools] "
                    "extra).", out_path)
    return None
  return plt


def save(plt, fig, out_path: str) -> str:
  """Saves `fig` to `out_path` through a temporary file, closes it; the path.

  A reader never sees half a PNG: the file appears whole by rename.
  """
  fig.tight_layout()
  os.makedirs(os.path.dirname(out_path), exist_ok=True)
  tmp = out_path + ".tmp.png"
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  os.replace(tmp, out_path)
  return out_path
