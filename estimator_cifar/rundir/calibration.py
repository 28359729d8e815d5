"""`<model_dir>/calibration.json`: the temperature fitted for each checkpoint.

A JSON object keyed by checkpoint basename (`model.ckpt-1200`), each value a
record of one fit (engine/calibrate.py): `temperature`, `global_step`,
`fitted_on` ("validation"), `images`, `nll_before`, `nll_after`,
`ece_before`, `ece_after` and `time`. The newest MAX_RECORDS records are kept,
as checkpoints come and go. Readers look a checkpoint's temperature up by
basename, so a model_dir moved elsewhere keeps its calibration.

A file that cannot be read or is not such an object reads as empty, with one
warning: predictions then come uncalibrated, and the next fit replaces it.

Imports no TensorFlow.
"""

import json
import math
import os
import tempfile
import time

from absl import logging

from estimator_cifar import rundir

FILENAME = "calibration.json"
FITTED_ON = "validation"
MAX_RECORDS = 20  # The newest fits kept; older checkpoints are long deleted.
# The fit's figures a record copies from `record`'s argument.
FIGURES = ("images", "nll_before", "nll_after", "ece_before", "ece_after")


def path(model_dir: str) -> str:
  return os.path.join(model_dir, FILENAME)


def read(model_dir: str) -> dict[str, dict]:
  """Every record, by checkpoint basename; {} when the file is absent or bad."""
  try:
    with open(path(model_dir), encoding="utf-8") as f:
      records = json.load(f)
  except FileNotFoundError:
    return {}
  except (OSError, ValueError) as e:
    return _unusable(model_dir, f"it cannot be read as JSON ({e})")
  if not (isinstance(records, dict) and
          all(isinstance(r, dict) for r in records.values())):
    return _unusable(model_dir, "it is not a JSON object of records")
  return records


def temperature(model_dir: str, checkpoint: str) -> float | None:
  """The temperature fitted for `checkpoint` (any path; matched by basename).

  None when none was fitted, or the file or the record is unusable.
  """
  entry = read(model_dir).get(os.path.basename(checkpoint))
  if entry is None:
    return None
  value = entry.get("temperature")
  if (isinstance(value, (int, float)) and not isinstance(value, bool) and
      math.isfinite(value) and value > 0):
    return float(value)
  logging.warning("%s: the record of %s holds no positive temperature (%r); "
                  "its predictions stay uncalibrated.", path(model_dir),
                  os.path.basename(checkpoint), value)
  return None


def record(model_dir: str, checkpoint: str, temperature: float,
           figures: dict) -> dict:
  """Stores the fit of `checkpoint` (replacing an older one); returns its record.

  Args:
    model_dir: the run's model_dir.
    checkpoint: the checkpoint path the temperature was fitted for.
    temperature: the fitted T.
    figures: the fit's FIGURES (engine/calibrate.fit_checkpoint's result);
      others are ignored.
  """
  name = os.path.basename(checkpoint)
  entry = {"temperature": float(temperature),
           "global_step": rundir.checkpoint_step(name),
           "fitted_on": FITTED_ON, "time": time.time()}
  entry.update({key: rundir.json_ready(figures[key]) for key in FIGURES
                if key in figures})
  records = read(model_dir)
  records[name] = entry
  newest = sorted(records.items(), key=lambda item: _time(item[1]),
                  reverse=True)[:MAX_RECORDS]
  _write_atomically(path(model_dir), dict(sorted(newest)))
  return entry


def _time(entry: dict) -> float:
  """A record's time; 0 (oldest) when it has none usable."""
  value = entry.get("time")
  return float(value) if isinstance(value, (int, float)) else 0.0


def _write_atomically(file_path: str, records: dict) -> None:
  """Writes records to a fresh temporary file, then renames it over the path.

  A unique temporary name: two writers never share one half-written file.
  """
  directory = os.path.dirname(file_path) or "."
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=FILENAME + ".", suffix=".tmp",
                             dir=directory)
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      json.dump(records, f, indent=1, sort_keys=True)
      f.write("\n")
    os.replace(tmp, file_path)
  except BaseException:
    os.unlink(tmp)
    raise


def _unusable(model_dir: str, why: str) -> dict:
  """Logs why calibration.json is ignored; returns the empty records."""
  logging.warning("%s is ignored: %s. Predictions stay uncalibrated until the "
                  "next fit replaces it.", path(model_dir), why)
  return {}
