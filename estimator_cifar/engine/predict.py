"""`--mode=predict`: top-k classes of image files, as a table or JSON.

Images are PNG or JPEG files (a directory means every .png/.jpg/.jpeg in it,
sorted), decoded and resized to 32x32 in the graph exactly as the exported
`image_bytes` signature does, then given the eval transform. The newest
checkpoint of model_dir is used, with the EMA weights under
`ema.eval_with_ema`, as in eval and export. Class names come from the
model_dir's label_names.txt (written at train time), else from the data.
"""

import json
import os

import numpy as np
import tensorflow as tf

from estimator_cifar import paths as paths_lib
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.engine import export
from estimator_cifar.errors import ConfigError, DataError
from estimator_cifar.loaded_code import as_loaded
from estimator_cifar.model.keys import IMAGES_KEY
from estimator_cifar.rundir import checkpoint_check, identity

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
OUTPUTS = ("table", "json")
BATCH = 64
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG signatures.


def image_paths(images: str) -> list[str]:
  """Expands `--images` (comma-separated files and/or directories) to files.

  Raises:
    DataError: a path that does not exist, a directory with no images, or a
      file that is not a PNG or JPEG.
  """
  paths = []
  for item in (paths_lib.expand(p.strip()) for p in images.split(",")):
    if not item:
      continue
    if os.path.isdir(item):
      found = sorted(os.path.join(item, f) for f in os.listdir(item)
                     if f.lower().endswith(IMAGE_EXTENSIONS))
      if not found:
        raise DataError(f"--images: directory {item} has no "
                        f"{'/'.join(IMAGE_EXTENSIONS)} files.")
      paths.extend(found)
    elif os.path.isfile(item):
      paths.append(item)
    else:
      raise DataError(f"--images: {item} does not exist. Pass image files or "
                      "directories, comma-separated: --images=a.png,b.jpg,dir/")
  if not paths:
    raise DataError("--mode=predict needs --images=a.png,b.jpg (or a directory).")
  for path in paths:
    with open(path, "rb") as f:
      head = f.read(8)
    if not any(head.startswith(m) for m in _MAGIC):
      raise DataError(f"--images: {path} is not a PNG or JPEG file (its first "
                      "bytes do not match either format).")
  return paths


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


def run_predict(cfg: ExperimentConfig, model_dir: str, images: str,
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
  checkpoint_check.newest_checkpoint(model_dir, "--mode=predict")
  names = identity.label_names(cfg, model_dir, data_dir)
  estimator = export.serving_estimator(cfg, model_dir, len(names))
  try:
    probabilities = predict_files(estimator, cfg, paths)
  except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
    if "checkpoint" in e.message.lower():  # Raised by the restore.
      raise identity.restore_error(cfg, model_dir, e.message) from None
    raise DataError(f"Could not decode the images {', '.join(paths)}: "
                    f"{identity.error_cause(e.message)}") from None
  results = top_k(paths, probabilities, names, top)
  print(format_results(results, output), flush=True)
  return results
