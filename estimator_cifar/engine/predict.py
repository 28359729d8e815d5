"""`--mode=predict`: top-k classes of image files, as a table or JSON.

Images are PNG or JPEG files (a directory means every regular .png/.jpg/.jpeg
file in it, sorted), checked for size before decoding (data/image_files.py),
decoded and resized to the dataset spec's side (`cifar.SIDE`) in the graph
exactly as the exported `image_bytes` signature does, then given the eval transform. The newest
checkpoint of model_dir is used, with the EMA weights under
`ema.eval_with_ema`, as in eval and export. Class names come from the
model_dir's label_names.txt (written at train time), else from the data.
"""

import json
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from estimator_cifar import paths as paths_lib
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import image_files
from estimator_cifar.engine import export, export_formats, temperatures
from estimator_cifar.errors import ConfigError, DataError
from estimator_cifar.loaded_code import as_loaded
from estimator_cifar.model.keys import IMAGES_KEY
from estimator_cifar.rundir import checkpoint_check, identity

OUTPUTS = ("table", "json")
BATCH = 64


def image_paths(images: str | Sequence[str], source: str = "--images") -> list[str]:
  """Expands `--images` values (files and/or directories) to checked files.

  A value that names an existing file or directory is taken whole, so a name
  may hold a comma; any other value is split at commas (`a.png,b.jpg,dir/`).
  A directory means the PNG/JPEG regular files directly in it, sorted (see
  `image_files.folder_images`). Each file is checked before anything decodes
  it (`image_files.check_image`: a regular PNG or JPEG within the pixel limit).

  Args:
    images: the values.
    source: who asks, as the messages name it: `--images` (the command line)
      or a Python name (`Predictor`).

  Raises:
    DataError: a path that does not exist, a directory with no images, or a
      file that `image_files.check_image` refuses.
  """
  cli = source == "--images"
  values = [images] if isinstance(images, str) else list(images)
  paths = []
  for item in (item for value in values for item in _flag_items(value)):
    if os.path.isdir(item):
      found = image_files.folder_images(item)
      if not found:
        raise DataError(f"{source}: directory {item} has no "
                        f"{'/'.join(image_files.IMAGE_EXTENSIONS)} files.")
      paths.extend(found)
    elif os.path.lexists(item):  # Links too: check_image names a broken one.
      paths.append(item)
    elif cli:
      raise DataError(f"--images: {item} does not exist. Pass image files or "
                      "directories: --images=a.png,b.jpg,dir/ or --images "
                      "repeated (a name with a comma: give it alone).")
    else:
      raise DataError(f"{source}: {item} does not exist. Pass image files or "
                      "folders, as a list of paths.")
  if not paths:
    raise DataError("--mode=predict needs --images=a.png,b.jpg (or a directory)."
                    if cli else f"{source} got no images: pass image files "
                    "or folders.")
  for path in paths:
    image_files.check_image(path)
  return paths


def _flag_items(value: str) -> list[str]:
  """One `--images` value as paths: whole if it exists, else split at commas."""
  whole = paths_lib.expand(value.strip())
  if whole and os.path.lexists(whole):
    return [whole]
  return [paths_lib.expand(p.strip()) for p in value.split(",") if p.strip()]


def undecodable_image(paths: list[str]) -> tuple[str, str] | None:
  """(path, why) of the first file TensorFlow cannot decode, else None.

  A failed batch names no file; `export.undecodable` tries each alone.
  """
  found = export.undecodable(tf.io.read_file(path).numpy() for path in paths)
  return (paths[found[0]], found[1]) if found else None


def predict_files(estimator: tf.estimator.Estimator, cfg: ExperimentConfig,
                  paths: list[str]) -> np.ndarray:
  """Class probabilities [len(paths), classes] from the newest checkpoint."""

  def input_fn():
    ds = tf.data.Dataset.from_tensor_slices(paths).map(tf.io.read_file)
    return ds.batch(BATCH).map(
        lambda data: {IMAGES_KEY: export.preprocess(export.decode_images(data), cfg)})

  rows = estimator.predict(as_loaded(input_fn), predict_keys=["probabilities"],
                           yield_single_examples=False)
  return np.concatenate([r["probabilities"] for r in rows], axis=0)


def top_k(paths: list[str], probabilities: np.ndarray, names: list[str],
          k: int) -> list[dict]:
  """[{image, predictions: [{rank, class, label, probability}]}], best first."""
  k = max(1, min(k, probabilities.shape[1]))
  results = []
  for path, probs in zip(paths, probabilities):
    order = np.argsort(-probs, kind="stable")[:k]
    results.append({"image": path, "predictions": [
        {"rank": r + 1, "class": int(c), "label": names[c],
         "probability": round(float(probs[c]), 6)} for r, c in enumerate(order)]})
  return results


def format_results(results: list[dict], output: str) -> str:
  """The results as an aligned text table or as JSON."""
  if output == "json":
    return json.dumps(results, indent=2)
  header = ("image", "rank", "class", "label", "probability")
  rows = [(r["image"], str(p["rank"]), str(p["class"]), p["label"],
           f"{p['probability']:.4f}") for r in results for p in r["predictions"]]
  widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
  lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
           for row in [header] + rows]
  return "\n".join(lines)


def run_predict(cfg: ExperimentConfig, model_dir: str,
                images: str | Sequence[str],
                data_dir: str | None = None, top: int = 5,
                output: str = "table") -> list[dict]:
  """`--mode=predict`: prints and returns the top-`top` classes per image.

  Raises:
    CheckpointError: no checkpoint in model_dir.
    DataError: see `image_paths`; or no label names to be found.
  """
  if output not in OUTPUTS:
    raise ConfigError(f"--output={output}: use one of {', '.join(OUTPUTS)}.")
  paths = image_paths(images)
  checkpoint = checkpoint_check.newest_checkpoint(model_dir, "--mode=predict")
  names = identity.label_names(cfg, model_dir, data_dir)
  temperature = temperatures.temperature_for(
      cfg, model_dir, checkpoint,
      lambda: export_formats.available_source(cfg, data_dir))
  estimator = export.serving_estimator(cfg, model_dir, len(names), temperature)
  try:
    probabilities = predict_files(estimator, cfg, paths)
  except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
    if "checkpoint" in e.message.lower():  # Raised by the restore.
      raise identity.restore_error(cfg, model_dir, e.message) from None
    path, cause = undecodable_image(paths) or (
        f"one of {len(paths)} images", identity.error_cause(e.message))
    raise DataError(f"Could not decode {path}: {cause}. Replace or remove "
                    "that file.") from None
  identity.check_label_count(model_dir, names, probabilities.shape[1])
  results = top_k(paths, probabilities, names, top)
  print(format_results(results, output), flush=True)
  return results
