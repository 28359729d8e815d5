"""How much of a run's ECE is the test set's size: the floor of a calibrated model.

  python -m tools.ece_floor RUN [RUN ...] [--split=test]

For each run, the newest row of `--split` in `eval/metrics.jsonl` gives the
ECE measured, its confidence bins (`reliability`, and the uncalibrated ones
beside them) and the number of images (the confusion matrix's total). A
perfectly calibrated model with the same confidences would still show an ECE
above 0 on that many images; the floor is its median (and 90th percentile)
over simulated draws (model/temperature.py's `ece_floor`). An ECE near the
floor cannot be told from perfect calibration on that test set.
"""

import json
import sys
from typing import Sequence

from absl import flags

from estimator_cifar import paths
from estimator_cifar.data.source import EVAL_SPLITS, TEST
from estimator_cifar.model import temperature
from estimator_cifar.model.keys import CONFUSION_KEY, RELIABILITY_KEY
from estimator_cifar.rundir import metrics_log
from . import cli

FLAGS = flags.FlagValues()
flags.DEFINE_enum("split", TEST, list(EVAL_SPLITS),
                  "The split whose newest evaluation to read.",
                  flag_values=FLAGS)


def floor_row(model_dir: str, split: str) -> dict:
  """The figures of `model_dir`'s newest `split` row (see the docstring).

  Raises:
    ValueError: the run has no such row, or a row without bins.
  """
  rows = metrics_log.rows_of(model_dir, split)
  if not rows:
    raise ValueError(f"{model_dir} has no evaluation of the {split} split in "
                     f"{metrics_log.path(model_dir)}")
  row = rows[-1]
  if RELIABILITY_KEY not in row or CONFUSION_KEY not in row:
    raise ValueError(f"the newest {split} row of {model_dir} has no "
                     "confidence bins (written by versions that record "
                     "`reliability`): evaluate it again with --mode=eval")
  images = int(sum(map(sum, row[CONFUSION_KEY])))
  median, p90 = temperature.ece_floor(row[RELIABILITY_KEY], images)
  return {"model_dir": model_dir, "split": split, "images": images,
          "global_step": row.get("global_step"), "ece": row.get("ece"),
          "ece_uncalibrated": row.get("ece_uncalibrated"),
          "floor_median": round(median, 4), "floor_p90": round(p90, 4)}


def main(argv: Sequence[str]) -> None:
  """Prints `floor_row` of each run named by `argv` (no program name)."""
  runs = cli.parse(FLAGS, argv, __doc__)
  if not runs:
    cli.exit_error("give at least one run: python -m tools.ece_floor RUN")
  for run in runs:
    try:
      print(json.dumps(floor_row(paths.expand(run), FLAGS.split)))
    except ValueError as e:
      cli.exit_error(str(e))


if __name__ == "__main__":
  main(sys.argv[1:])
