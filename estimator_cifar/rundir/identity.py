"""What a model_dir remembers about the run that wrote it, and checks against it.

- `config.json` (written by `rundir.write_config`): on a train run into an
  existing model_dir, the model and the classes must match, or the run is
  refused with the differences (old -> new) before anything is overwritten:
  resuming a ResNet-20 checkpoint as a ResNet-56 would otherwise fail deep in
  the restore with a cryptic NotFoundError, or, for classes, silently mix two
  label sets. `data.validation_size` may never change, not even with
  --allow_config_change: the images held out must stay out of training.
- `label_names.txt`: the class names, one per line, written at train time so
  that `--mode=predict` and `--mode=export` work from the model_dir alone.

Imports no TensorFlow.
"""

import os

from estimator_cifar import rundir
from estimator_cifar.rundir import data_split
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import cifar
from estimator_cifar.errors import CheckpointError, DataError

# Fields that change the variables or the meaning of the logits. data.label
# only matters for a dataset with several label kinds (CIFAR-100's fine or
# coarse classes).
IDENTITY_FIELDS = ("model.name", "model.depth", "model.version", "model.width",
                   "data.name", "data.label")
# Fixed for a model_dir's whole life, even with --allow_config_change
# (rundir/data_split.py).
VALIDATION_SIZE = "data.validation_size"


def config_differences(old: dict, new: ExperimentConfig) -> list[str]:
  """`field: old -> new` for each identity field that differs."""
  new_dict = new.to_dict()
  diffs = []
  for key in IDENTITY_FIELDS:
    section, name = key.split(".")
    before = _recorded(old, key)
    after = new_dict[section][name]
    if key == "data.label" and all(
        len(cifar.label_kinds(name)) == 1
        for name in (_recorded(old, "data.name"), new.data.name)):
      continue
    if before is not None and before != after:
      diffs.append(f"{key}: {before!r} -> {after!r}")
  return diffs


def _recorded(old: dict, key: str):
  """`section.name` of a config.json's dict; None if absent (or not a dict
  there, in a config.json from elsewhere)."""
  section, name = key.split(".")
  values = old.get(section)
  return values.get(name) if isinstance(values, dict) else None


def check_config(cfg: ExperimentConfig, model_dir: str,
                 allow_change: bool = False) -> None:
  """Refuses to train into a model_dir written for another model or classes.

  Args:
    cfg: the requested config.
    model_dir: the run's directory; nothing is checked if it has no config.json.
    allow_change: the user's `--allow_config_change`: log the differences and go on.

  Raises:
    CheckpointError: an identity field differs and `allow_change` is False.
    ConfigError: `data.validation_size` differs (whatever `allow_change`).
  """
  try:
    old = rundir.read_config(model_dir)
  except (OSError, ValueError) as e:
    raise CheckpointError(f"{rundir.config_path(model_dir)} is not readable "
                          f"JSON ({e}). Remove it if the model_dir is yours, "
                          "or use another --model_dir.")
  if old is None:
    return
  _check_validation_size(old, cfg, model_dir)
  diffs = config_differences(old, cfg)
  if not diffs:
    return
  if allow_change:
    from absl import logging
    logging.warning("--allow_config_change: %s was written for another config "
                    "(%s); continuing.", model_dir, "; ".join(diffs))
    return
  raise CheckpointError(
      f"{model_dir} holds a run of another model or dataset: "
      f"{'; '.join(diffs)}. Its checkpoints would not restore into the "
      "requested model. Use a new --model_dir, or the model_dir's own settings, "
      "or pass --allow_config_change to continue anyway (to fine-tune from it "
      "into a new model_dir, use --warm_start_from instead).")


def _check_validation_size(old: dict, cfg: ExperimentConfig,
                           model_dir: str) -> None:
  """Refuses another data.validation_size: the run's checkpoints trained on
  images the new split would evaluate on (an older config.json without the
  field held none out)."""
  recorded = _recorded(old, VALIDATION_SIZE) or 0
  if recorded != cfg.data.validation_size:
    raise data_split.size_changed(rundir.config_path(model_dir), recorded,
                                  cfg.data.validation_size)


def restore_error(cfg: ExperimentConfig, model_dir: str, detail: str) -> CheckpointError:
  """A CheckpointError for a checkpoint that does not fit the requested model.

  Export and predict build the model from the requested config, so the usual
  cause is a missing --params_override; the message names the differences from
  the model_dir's config.json when it has one.
  """
  detail = error_cause(detail).rstrip(".")
  path = rundir.config_path(model_dir)
  old = rundir.read_config(model_dir)
  diffs = config_differences(old, cfg) if old is not None else []
  where = (f" The model_dir was trained with another config ({'; '.join(diffs)})."
           if diffs else "")
  return CheckpointError(
      f"The checkpoint in {model_dir} does not fit the requested model: "
      f"{detail}.{where} Pass the same --experiment and --params_override as "
      f"for training (they are recorded in {path}).")


_NOISE = ("Graph execution error", "Detected at node", "File ", "Node:", "[[",
          "Restoring from checkpoint failed", "Original error")


def error_cause(message: str) -> str:
  """The line of a TensorFlow error message that says what went wrong.

  Session errors wrap the cause (`Key x not found in checkpoint`, `Invalid
  PNG`) in advice, node names and a graph-construction traceback.
  """
  lines = [line.strip() for line in message.splitlines()]
  causes = [line for line in lines if line and not line.startswith(_NOISE)]
  return causes[0] if causes else (lines[0] if lines else "unknown error")


def write_label_names(model_dir: str, names: list[str]) -> None:
  """Writes `label_names.txt` (one name per line) into model_dir."""
  os.makedirs(model_dir, exist_ok=True)
  rundir.write_atomically(os.path.join(model_dir, rundir.LABELS_FILE),
                          "".join(name + "\n" for name in names))


def read_label_names(model_dir: str) -> list[str] | None:
  """The names written at train time, or None for an older model_dir."""
  path = os.path.join(model_dir, rundir.LABELS_FILE)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return [line.rstrip("\n") for line in f if line.strip()]


def check_label_count(model_dir: str, names: list[str], num_classes: int) -> None:
  """Refuses class names whose count differs from the model's outputs.

  Raises:
    DataError: naming label_names.txt (or the data, when there is no such
      file), its count and the model's.
  """
  if len(names) == num_classes:
    return
  path = os.path.join(model_dir, rundir.LABELS_FILE)
  if not os.path.isfile(path):
    raise DataError(f"The data names {len(names)} classes, but the model in "
                    f"{model_dir} has {num_classes}. Pass the --data_dir and "
                    "data.* settings it was trained with.")
  raise DataError(f"{path} names {len(names)} classes, but the model in "
                  f"{model_dir} has {num_classes}. Write one name per class, "
                  "one a line, or delete the file to take the names from the "
                  "data.")


def label_names(cfg: ExperimentConfig, model_dir: str,
                data_dir: str | None) -> list[str]:
  """The model's class names: label_names.txt, else from the data source.

  Raises:
    DataError: no label_names.txt and the data cannot be found.
  """
  names = read_label_names(model_dir)
  if names:
    return names
  from estimator_cifar.data import sources
  return list(sources.get_source(cfg, data_dir).label_names)
