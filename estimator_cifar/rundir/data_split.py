"""`validation_split.json`: which training images a run held out (TF-free).

Written once, by the run that first trains into the model_dir, from the
DataSource's `split_info` (data/validation_split.py): the size, the rule,
its seed, per-class counts and the sha256 of the held-out indices. Every
later run into the model_dir (a resume, an eval, another task of a cluster)
is checked against it, so the validation images never move under a run:
another size is refused, and so is the same size over other training data.
"""

import json
import os

from estimator_cifar import rundir
from estimator_cifar.errors import CheckpointError, ConfigError, DataError

FILENAME = "validation_split.json"


def check_and_write(model_dir: str, split_info: dict | None, write: bool) -> None:
  """Checks the requested split against the recorded one; records it if new.

  Args:
    model_dir: the run's directory.
    split_info: the source's `split_info`; None when nothing is held out.
    write: whether this process writes the model_dir's files (the chief's
      train run); an absent file is then written, atomically.

  Raises:
    ConfigError: the recorded validation_size differs from the requested one.
    DataError: the same size, but other images held out: the training data
      differ from the run's.
    CheckpointError: the file is there but not readable JSON.
  """
  path = os.path.join(model_dir, FILENAME)
  recorded = _read(path)
  requested = split_info["validation_size"] if split_info else 0
  if recorded is None:
    if write and split_info:
      os.makedirs(model_dir, exist_ok=True)
      rundir.write_atomically(path, json.dumps(split_info, indent=2) + "\n")
    return
  size = recorded.get("validation_size")
  if size != requested:
    raise size_changed(path, size, requested)
  if split_info and recorded.get("indices_sha256") != split_info["indices_sha256"]:
    raise DataError(
        f"The training data differ from the run's in {model_dir}: the same "
        f"data.validation_size={size} holds out other images than {path} "
        "records (another digest of the held-out indices), so its checkpoints "
        "have seen images the split now evaluates on. Pass the --data_dir and "
        "data.* settings the run trained with, or use a new --model_dir.")


def size_changed(where: str, recorded, requested: int) -> ConfigError:
  """The error for a run that asks for another validation_size than `where`
  (a model_dir's record of it) holds."""
  return ConfigError(
      f"{where} records data.validation_size={recorded}, but "
      f"data.validation_size={requested} is requested: the validation images "
      "would change under the run's checkpoints, which have trained on the "
      "others. Pass --params_override=data.validation_size="
      f"{recorded}, or use a new --model_dir.")


def _read(path: str) -> dict | None:
  """The recorded split, or None when the file is absent."""
  try:
    with open(path, encoding="utf-8") as f:
      recorded = json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as e:
    raise CheckpointError(
        f"{path} is not readable JSON ({e}). Delete it if the model_dir is "
        "yours (the next training run records the split again), or use a new "
        "--model_dir.") from None
  if not isinstance(recorded, dict):
    raise CheckpointError(f"{path} is not a JSON object. Delete it if the "
                          "model_dir is yours, or use a new --model_dir.")
  return recorded
