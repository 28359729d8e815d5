"""Reads what a training run left in its model_dir: config, events, eval metrics.

Shared by `plot_curves`, `results_table` and `sweep`. A model_dir holds the
files `estimator_cifar.rundir` names (config.json, run_info.json, the
checkpoint state file, eval/metrics.jsonl; any of them may be absent) and
TensorFlow's event files: train scalars in the model_dir, eval scalars in
eval/.

Event files are parsed with the protobufs that ship in the `tensorboard` package
(a TF dependency) and a small TFRecord reader instead of TensorFlow itself: the
tools then start without paying for TensorFlow's import, and a record cut
short by a trainer that is still writing simply ends the file instead of
raising `DataLossError`. Only local file systems are supported.
"""

import datetime
import glob
import json
import os
import re
import struct
import sys
from typing import Any, Iterator, Optional, Sequence

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.run_records", file=sys.stderr)
  sys.exit(2)

import numpy as np
from absl import flags, logging
from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from estimator_cifar import paths, rundir
from estimator_cifar.rundir import metrics_log
from . import cli, run_figures
from .run_figures import Series

EVENT_GLOB = "events.out.tfevents.*"

_HEADER = struct.Struct("<QI")  # TFRecord: uint64 length, uint32 masked crc.
_FOOTER_BYTES = 4  # uint32 masked crc of the payload.


class NoRunsError(Exception):
  """No model_dir where the user pointed; shown as a one-line message."""


def _iter_records(path: str) -> Iterator[bytes]:
  """Yields TFRecord payloads; stops quietly at a truncated trailing record.

  CRCs are not checked: doing that in pure Python costs more than parsing, and a
  corrupt record is caught by the protobuf parse in `_iter_events` anyway.
  """
  with open(path, "rb") as f:
    size = os.fstat(f.fileno()).st_size
    while True:
      header = f.read(_HEADER.size)
      if len(header) < _HEADER.size:
        return
      (length, _) = _HEADER.unpack(header)
      if length > size - f.tell():
        return  # Unflushed, or a garbage length: never read past the file.
      payload = f.read(length)
      footer = f.read(_FOOTER_BYTES)
      if len(payload) < length or len(footer) < _FOOTER_BYTES:
        return  # The writer has not flushed this record yet.
      yield payload


def _iter_events(path: str) -> Iterator[event_pb2.Event]:
  """Yields one file's events; stops with a warning at a corrupt record."""
  try:
    for payload in _iter_records(path):
      try:
        yield event_pb2.Event.FromString(payload)
      except Exception:  # pylint: disable=broad-except
        # protobuf raises its own DecodeError type; any failure means garbage.
        logging.warning(
            "%s: corrupt event record; ignoring the rest of the file", path)
        return
  except OSError as e:
    logging.warning("%s: cannot read (%s); skipping", path, e)


def _scalar_value(value: Any) -> Optional[float]:
  """The float of a v1 or v2 scalar summary value; None if not a scalar."""
  kind = value.WhichOneof("value")
  if kind == "simple_value":  # tf.compat.v1.summary.scalar / Estimator hooks.
    return float(value.simple_value)
  if kind == "tensor":  # tf.summary.scalar (v2) stores a rank-0 tensor.
    try:
      array = tensor_util.make_ndarray(value.tensor)
    except Exception:  # pylint: disable=broad-except
      return None  # A dtype tensorboard cannot decode: not a scalar we want.
    # Histograms and images are also tensors: keep numeric single elements only.
    if array.size == 1 and np.issubdtype(array.dtype, np.number):
      return float(array.reshape(()))
  return None


def event_files(event_dir: str) -> list[str]:
  """Event files directly in `event_dir`, oldest first.

  Args:
    event_dir: a model_dir or its eval subdirectory.

  Returns:
    Paths ordered by the creation time the writer put in the file name, so
    that a restarted trainer's newer file is read after the older one.
  """
  def creation_key(path):
    # events.out.tfevents.<unix seconds>.<host>[...]
    match = re.match(r"events\.out\.tfevents\.(\d+)", os.path.basename(path))
    return (int(match.group(1)) if match else 0, os.path.basename(path))

  pattern = os.path.join(glob.escape(event_dir), EVENT_GLOB)
  paths = [p for p in glob.glob(pattern) if os.path.isfile(p)]
  return sorted(paths, key=creation_key)


def _read_event_dir(
    event_dir: str) -> tuple[dict[str, Series], Optional[tuple[float, float]]]:
  """Scalars by tag and the (first, last) event wall time, in one pass."""
  by_tag: dict[str, dict[int, float]] = {}
  first = last = None
  for path in event_files(event_dir):
    for event in _iter_events(path):
      if event.wall_time:
        wall_time = event.wall_time
        first = wall_time if first is None else min(first, wall_time)
        last = wall_time if last is None else max(last, wall_time)
      for value in event.summary.value:
        scalar = _scalar_value(value)
        if scalar is not None:
          # Later writes win: a trainer restarted from an older checkpoint
          # re-logs those steps, and its newer values are the ones that count.
          by_tag.setdefault(value.tag, {})[event.step] = scalar
  scalars = {tag: sorted(points.items()) for tag, points in by_tag.items()}
  span = (first, last) if first is not None else None
  return scalars, span


def read_scalars(event_dir: str) -> dict[str, Series]:
  """Reads every scalar logged in the event files directly in `event_dir`.

  Both v1 summaries (`simple_value`, as written by the Estimator and
  `tf.compat.v1.summary`) and v2 summaries (rank-0 tensors, as written by
  `tf.summary.scalar`) are returned. Subdirectories are not read, so a
  model_dir's train scalars never mix with its `eval/` scalars.

  Args:
    event_dir: a directory holding `events.out.tfevents.*` files.

  Returns:
    A dict from tag to a list of (step, value) sorted by step. Where a tag was
    logged twice at one step, the later write wins. Empty if there are no
    event files.
  """
  return _read_event_dir(event_dir)[0]


def _load_json(path: str) -> Optional[dict[str, Any]]:
  """A JSON object from `path`, or None (with a warning if it is unreadable)."""
  if not os.path.isfile(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except (OSError, ValueError) as e:
    logging.warning("%s: unreadable (%s); ignoring it", path, e)
    return None
  return data if isinstance(data, dict) else None


def read_config(model_dir: str) -> Optional[dict[str, Any]]:
  """The run's `config.json` as a dict, or None if absent or unreadable."""
  return _load_json(os.path.join(model_dir, rundir.CONFIG_FILE))


def is_run(path: str) -> bool:
  """Whether `path` looks like a model_dir: config, events or eval output."""
  eval_dir = os.path.join(path, rundir.EVAL_DIR)
  return (os.path.isfile(os.path.join(path, rundir.CONFIG_FILE))
          or bool(event_files(path))
          or os.path.isfile(os.path.join(eval_dir, rundir.METRICS_FILE))
          or bool(event_files(eval_dir)))


def find_runs(root: str) -> list[str]:
  """Finds every model_dir at or below `root`.

  A directory is a run if it holds `config.json` or event files, or its `eval/`
  subdirectory holds `metrics.jsonl` or event files. The search does not
  descend into a run, so a run's own `eval/` (which holds event files too) is
  not reported as a second run. Hidden directories and symlinks are skipped.

  Args:
    root: a model_dir or a directory of model_dirs.

  Returns:
    Sorted paths of the runs found, each starting with `root`. Empty if
    `root` is not a directory.
  """
  runs = []
  for dirpath, dirnames, _ in os.walk(root):
    if is_run(dirpath):
      runs.append(dirpath)
      dirnames[:] = []
    else:
      dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
  return sorted(runs)


def _experiment_name(config: Optional[dict[str, Any]], model_dir: str) -> str:
  """The experiment named in config.json, else the model_dir's base name."""
  # config.json keeps the experiment's name under "name"; "experiment" is
  # accepted too, for records written by other tools.
  name = (config or {}).get("name") or (config or {}).get("experiment")
  if isinstance(name, dict):  # Tolerate {"experiment": {"name": ...}}.
    name = name.get("name")
  if isinstance(name, str) and name:
    return name
  return os.path.basename(os.path.normpath(os.path.abspath(model_dir)))


def _to_unix(value: Any) -> Optional[float]:
  """Unix seconds from a unix number or an ISO 8601 string, else None."""
  if isinstance(value, str):
    try:
      return datetime.datetime.fromisoformat(value).timestamp()
    except ValueError:
      return None
  return run_figures.number(value)


def run_summary(model_dir: str) -> dict[str, Any]:
  """Summarizes one run for a results table.

  Accuracy comes from `eval/metrics.jsonl` where it exists, because that file
  is written once per evaluated checkpoint and names it and its split; the
  eval event files are the fallback for runs that predate it (they scored the
  test split). Wall time comes from `run_info.json` where it has both ends,
  else from the span of the event wall times (train and eval) and the
  metrics.jsonl `time`s, which also covers a run that was killed before it
  could write its end time.

  Args:
    model_dir: the run's model_dir.

  Returns:
    A dict with keys `model_dir`, `experiment`, `final_step` (the largest step
    in the checkpoint state, train events or eval metrics), `selection_split`
    (the split its training-time evaluations scored: `validation` or `test`),
    `best_accuracy`, `best_step` and `final_accuracy` (at the largest
    evaluated step) of that split only, the test-once figures
    `test_accuracy`, `test_ece` and `test_ece_uncalibrated` of a run with a
    validation split (see `run_figures`), `wall_time_s` and `status`. For a
    run without a validation split the test figure is `final_accuracy` and
    the `test_*` keys are None. Values that cannot be known are None.
  """
  train_scalars, train_span = _read_event_dir(model_dir)
  eval_dir = os.path.join(model_dir, rundir.EVAL_DIR)
  metrics = run_figures.read_rows(model_dir)
  split = metrics_log.selection_split(metrics)
  accuracy = run_figures.split_series(metrics, "accuracy").get(split, [])
  eval_span = None
  if not accuracy:
    eval_scalars, eval_span = _read_event_dir(eval_dir)
    split, accuracy = metrics_log.TEST, eval_scalars.get("accuracy", [])
  elif os.path.isdir(eval_dir):
    eval_span = _read_event_dir(eval_dir)[1]

  steps = [step for series in train_scalars.values() for step, _ in series]
  steps += [step for step, _ in accuracy] + [r["global_step"] for r in metrics]
  checkpoint_step = rundir.checkpoint_step(rundir.state_checkpoint(model_dir))
  if checkpoint_step is not None:
    steps.append(checkpoint_step)

  run_info = _load_json(os.path.join(model_dir, rundir.RUN_INFO_FILE)) or {}
  start, end = _to_unix(run_info.get("start_time")), _to_unix(
      run_info.get("end_time"))
  if start is not None and end is not None:
    wall_time = end - start
  else:
    times = [t for span in (train_span, eval_span) if span for t in span]
    times += [t for t in (_to_unix(r.get("time")) for r in metrics)
              if t is not None]
    wall_time = max(times) - min(times) if times else None

  return {
      "model_dir": model_dir,
      "experiment": _experiment_name(read_config(model_dir), model_dir),
      "final_step": max(steps) if steps else None,
      "selection_split": split if accuracy else None,
      **run_figures.selection_figures(accuracy),
      **run_figures.test_once_figures(metrics),
      "wall_time_s": wall_time,
      "status": run_info.get("status"),
  }


def runs_in(names: Sequence[str]) -> tuple[list[str], list[str]]:
  """(runs: each name if a run, else the runs below it; names that held none)."""
  runs, empty = [], []
  for path in names:
    found = [path] if is_run(path) else find_runs(path)
    if not found:
      empty.append(path)
    runs.extend(r for r in found if r not in runs)
  return runs, empty


USAGE = """Prints what each run at or below MODEL_DIR left, one JSON line per run.

  python -m tools.run_records MODEL_DIR [MODEL_DIR ...]

Each line holds model_dir, experiment, final_step, selection_split (the split
the run evaluated while training: validation where it held images out, else
test), best_accuracy, best_step and final_accuracy on that split, the test
split's test_accuracy, test_ece and test_ece_uncalibrated, scored once at the
end of a run with a validation split (null otherwise: then final_accuracy is
the test figure), wall_time_s and status; null where the run does not say.
"""
FLAGS = flags.FlagValues()  # No flags of its own: --help only.


def main(argv: Sequence[str]) -> None:
  """Prints `run_summary` of each run named by `argv` (no program name)."""
  names = cli.parse(FLAGS, argv, USAGE)
  runs, empty = runs_in([paths.expand(name) for name in names])
  if not runs:
    cli.exit_error(f"no run found in {', '.join(names) or '(nothing given)'}: give a "
                   "model_dir (it holds config.json, event files or "
                   "eval/metrics.jsonl) or a folder of them")
  for path in empty:
    logging.warning("%s: no run at or below it; skipping it", path)
  for run in runs:
    print(json.dumps(run_summary(run)))


if __name__ == "__main__":
  main(sys.argv[1:])
