r"""Plots training curves of one or more runs into a single PNG.

Three panels side by side, one color per run: train loss (raw, faint, plus a
TensorBoard-style smoothed line), eval accuracy, and the learning rate, all
against the global step. Eval accuracy draws each split a run scored as its
own series (validation solid, test dashed, named in the panel's legend): a
run with a validation split evaluates it while training and the test split
once at the end, and one line through both would mix them.

Usage (from the repository root):

  python -m tools.plot_curves runs/resnet20 runs/resnet56 --out curves.png \
      --smoothing 0.6

A MODEL_DIR that is not itself a run but a directory of runs stands for all
the runs below it (see `run_records.find_runs`). A run that lacks a series (no
eval yet, say) is drawn without it and a log line says so; finding no run at
all exits non-zero with a one-line message.
"""

import os
import sys
from typing import Any, Optional, Sequence

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.plot_curves", file=sys.stderr)
  sys.exit(2)

from absl import app, flags, logging

from estimator_cifar import extras

matplotlib = extras.require_or_exit("matplotlib", "python -m tools.plot_curves")

matplotlib.use("Agg")  # Headless: no display on training machines.

from matplotlib import pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

from matplotlib.lines import Line2D  # noqa: E402

from estimator_cifar import paths, rundir  # noqa: E402
from estimator_cifar.rundir import metrics_log  # noqa: E402
from . import cli, run_figures, run_records  # noqa: E402

# Tags tried in order for each panel. `loss` is what the Estimator logs; the
# others cover runs that log only the components.
LOSS_TAGS = ("loss", "losses/total_loss", "total_loss", "losses/cross_entropy")
LR_TAGS = ("learning_rate", "lr", "optimizer/learning_rate")
ACCURACY_TAG = "accuracy"

PANELS = ("train_loss", "eval_accuracy", "learning_rate")
# How each split's accuracy is drawn; evals are sparse (one per checkpoint),
# so markers show where they are.
SPLIT_STYLES = {metrics_log.VALIDATION: {"linestyle": "-", "marker": "o"},
                metrics_log.TEST: {"linestyle": "--", "marker": "s"}}
OTHER_SPLIT_STYLE = {"linestyle": ":", "marker": "^"}  # A split named otherwise.
DPI = 150
FIGSIZE = (13.0, 4.0)  # Inches: fits a full-width figure in a two-column paper.


def smooth(values: Sequence[float], weight: float) -> list[float]:
  """TensorBoard's debiased exponential moving average.

  The debiasing (dividing by 1 - weight**n) keeps the first points from being
  pulled toward zero, so the smoothed line starts where the raw one does.

  Args:
    values: the raw series.
    weight: smoothing in [0, 1); 0 returns the values unchanged.

  Returns:
    The smoothed series, same length.
  """
  smoothed, last, debias = [], 0.0, 1.0
  for value in values:
    last = last * weight + (1.0 - weight) * value
    debias *= weight
    smoothed.append(last / (1.0 - debias) if debias < 1.0 else value)
  return smoothed


def _first_series(scalars: dict[str, run_figures.Series],
                  tags: Sequence[str]) -> tuple[Optional[str], list[Any]]:
  """The first of `tags` present in `scalars`, with its series."""
  for tag in tags:
    if scalars.get(tag):
      return tag, scalars[tag]
  return None, []


def run_labels(model_dirs: Sequence[str]) -> list[str]:
  """Legend names: base names, or paths below their common parent on a clash."""
  paths = [os.path.normpath(os.path.abspath(d)) for d in model_dirs]
  names = [os.path.basename(p) for p in paths]
  if len(set(names)) == len(names):
    return names
  parent = os.path.dirname(os.path.commonpath(paths)) if len(paths) > 1 else ""
  return [os.path.relpath(p, parent) if parent else p for p in paths]


def load_curves(model_dir: str) -> dict[str, dict[str, list[float]]]:
  """Reads the three panels' series of one run.

  Args:
    model_dir: the run's model_dir.

  Returns:
    A dict from panel name (see `PANELS`) to {"steps": [...], "values": [...]},
    except "eval_accuracy", which maps each split scored (the training-time
    split first; eval events of runs without metrics.jsonl count as test) to
    such a dict; a panel whose data is missing is left out, with a log line.
  """
  train = run_records.read_scalars(model_dir)
  curves = {}
  _, loss = _first_series(train, LOSS_TAGS)
  _, lr = _first_series(train, LR_TAGS)
  accuracy = run_figures.split_series(run_figures.read_rows(model_dir),
                                      ACCURACY_TAG)
  if not accuracy:
    eval_dir = os.path.join(model_dir, rundir.EVAL_DIR)
    events = run_records.read_scalars(eval_dir).get(ACCURACY_TAG, [])
    accuracy = {metrics_log.TEST: events} if events else {}
  for panel, series, where in (
      ("train_loss", loss, f"train events (tags {', '.join(LOSS_TAGS)})"),
      ("eval_accuracy", accuracy, "eval/metrics.jsonl or eval events"),
      ("learning_rate", lr, f"train events (tags {', '.join(LR_TAGS)})")):
    if not series:
      logging.warning("%s: no %s in %s; skipping that panel for this run",
                      model_dir, panel.replace("_", " "), where)
    elif isinstance(series, dict):
      curves[panel] = {split: _points(points) for split, points in series.items()}
    else:
      curves[panel] = _points(series)
  return curves


def _points(series: run_figures.Series) -> dict[str, list[float]]:
  """{"steps": [...], "values": [...]} of a series."""
  return {"steps": [s for s, _ in series], "values": [v for _, v in series]}


def _format_step(step: float, _=None) -> str:
  """Axis label for a step: 64000 -> '64k', 1500000 -> '1.5M'."""
  for scale, suffix in ((1e6, "M"), (1e3, "k")):
    if abs(step) >= scale:
      return f"{step / scale:g}{suffix}"
  return f"{step:g}"


def plot_runs(model_dirs: Sequence[str], out_path: str,
              smoothing: float = 0.6) -> dict[str, dict[str, Any]]:
  """Draws the runs' curves into one PNG.

  Args:
    model_dirs: the runs' model_dirs, drawn in this order.
    out_path: where to write the PNG; its directory is created if needed.
    smoothing: EMA weight for the train-loss line, in [0, 1).

  Returns:
    A dict from run label to {"model_dir": ..., panel: {"steps", "values"}}
    holding exactly the raw data that was plotted (the smoothed loss is under
    the "train_loss" panel's "smoothed" key).

  Raises:
    ValueError: if `smoothing` is outside [0, 1).
    run_records.NoRunsError: if `model_dirs` is empty.
  """
  if not 0.0 <= smoothing < 1.0:
    raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
  if not model_dirs:
    raise run_records.NoRunsError("no model_dirs given")

  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  fig, axes = plt.subplots(1, 3, figsize=FIGSIZE, layout="constrained")
  ax_loss, ax_acc, ax_lr = axes
  plotted = {}
  labels = run_labels(model_dirs)
  for i, (model_dir, label) in enumerate(zip(model_dirs, labels)):
    color = colors[i % len(colors)]
    curves = load_curves(model_dir)
    plotted[label] = {"model_dir": model_dir, **curves}
    if "train_loss" in curves:
      loss = curves["train_loss"]
      loss["smoothed"] = smooth(loss["values"], smoothing)
      if smoothing > 0:  # Without smoothing the raw line is the line.
        ax_loss.plot(loss["steps"], loss["values"], color=color, alpha=0.25,
                     linewidth=0.8)
      ax_loss.plot(loss["steps"], loss["smoothed"], color=color, linewidth=1.6,
                   label=label)
    for split, acc in curves.get("eval_accuracy", {}).items():
      ax_acc.plot(acc["steps"], acc["values"], color=color, linewidth=1.6,
                  markersize=3, label=label,
                  **SPLIT_STYLES.get(split, OTHER_SPLIT_STYLE))
    if "learning_rate" in curves:
      lr = curves["learning_rate"]
      ax_lr.plot(lr["steps"], lr["values"], color=color, linewidth=1.6,
                 label=label)

  _style_axes(ax_loss, "Train loss", "Loss")
  if smoothing > 0:
    ax_loss.set_title(f"Train loss (smoothing {smoothing:g})")
  _style_axes(ax_acc, "Eval accuracy", "Top-1 accuracy")
  ax_acc.yaxis.set_major_formatter(ticker.PercentFormatter(xmax=1.0))
  drawn = {split for run in plotted.values()
           for split in run.get("eval_accuracy", {})}
  splits = ([split for split in SPLIT_STYLES if split in drawn]
            + sorted(drawn - set(SPLIT_STYLES)))
  if splits:  # Which line style is which split; the colors are the runs'.
    ax_acc.legend(handles=[
        Line2D([], [], color="gray", label=split,
               **SPLIT_STYLES.get(split, OTHER_SPLIT_STYLE))
        for split in splits], loc="lower right", fontsize="small")
  _style_axes(ax_lr, "Learning rate", "Learning rate")
  lr_values = [v for run in plotted.values() if "learning_rate" in run
               for v in run["learning_rate"]["values"]]
  _maybe_log_scale(ax_lr, lr_values)

  legend = {}  # One entry per run, from whichever panel has it.
  for ax in axes:
    for handle, name in zip(*ax.get_legend_handles_labels()):
      legend.setdefault(name, handle)
  if legend:
    # Above the panels, so that no curve is hidden behind it.
    # Long names (sweep points) get fewer columns so none is cut at the edge.
    longest = max(len(name) for name in legend)
    fig.legend(list(legend.values()), list(legend), loc="outside upper center",
               ncols=max(1, min(len(legend), 4, 120 // max(longest, 1))),
               frameon=False)

  out_dir = os.path.dirname(os.path.abspath(out_path))
  os.makedirs(out_dir, exist_ok=True)
  fig.savefig(out_path, dpi=DPI, format="png")
  plt.close(fig)
  return plotted


def _style_axes(ax: Any, title: str, ylabel: str) -> None:
  """Title, labels, grid and compact step ticks shared by all panels."""
  ax.set_title(title)
  ax.set_xlabel("Step")
  ax.set_ylabel(ylabel)
  ax.grid(True, alpha=0.3)
  ax.xaxis.set_major_formatter(ticker.FuncFormatter(_format_step))
  if not ax.lines:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center",
            va="center", color="gray")


def _maybe_log_scale(ax: Any, values: list[float]) -> None:
  """Log y-axis for schedules spanning two decades or more, else linear.

  Piecewise schedules (0.1 -> 0.01 -> 0.001) are unreadable on a linear axis;
  below two decades a log axis gets cluttered minor-tick labels instead, and a
  schedule that reaches zero (cosine) has no log scale at all.
  """
  positive = [v for v in values if v > 0]
  if positive and len(positive) == len(values) and (
      max(positive) / min(positive) >= 100):
    ax.set_yscale("log")


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the CLI flags.

  Only called when run as a script: results_table also has an --out flag,
  and tests import both modules into one process.
  """
  flags.DEFINE_string("out", "curves.png", "Path of the PNG to write.")
  flags.DEFINE_float(
      "smoothing", 0.6,
      "EMA weight for the train loss, in [0, 1) as in TensorBoard.")


def main(argv: Sequence[str]) -> None:
  if len(argv) < 2:
    cli.exit_error("give at least one MODEL_DIR: python -m tools.plot_curves DIR ...")
  if not 0.0 <= FLAGS.smoothing < 1.0:
    cli.exit_error(f"--smoothing must be in [0, 1), got {FLAGS.smoothing}")
  runs, empty = run_records.runs_in([paths.expand(a) for a in argv[1:]])
  if not runs:
    cli.exit_error("no run found in " + ", ".join(argv[1:]) + ": give a model_dir"
                   " (it holds config.json, event files or eval/metrics.jsonl)"
                   " or a folder of them")
  for path in empty:
    logging.warning("%s: no config.json, event files or eval metrics at or "
                    "below it; skipping it", path)
  out = paths.expand(FLAGS.out)
  try:
    plot_runs(runs, out, FLAGS.smoothing)
  except OSError as e:
    cli.exit_error(f"cannot write {out} ({e}): pass a writable --out path")
  logging.info("wrote %s (%d run%s)", out, len(runs),
               "" if len(runs) == 1 else "s")


if __name__ == "__main__":
  define_flags()
  app.run(main)
