"""SavedModel export: serving signatures, `--mode=export`, best/latest exporters.

Signatures (outputs `classes` int64 [N], `probabilities` and `logits` float32
[N, classes] in both):
- `serving_default`: input `images`, raw uint8 [N, 32, 32, 3] (HWC, RGB, as
  stored in CIFAR). The eval transform (central crop to `data.image_size`,
  standardization) runs inside the graph, so clients send pixels, not floats.
- `image_bytes` (BYTES_SIGNATURE): input `image_bytes`, string [N] of encoded
  PNG/JPEG (GIF/BMP too), decoded to RGB and resized to 32x32 if needed.

Both are one graph: `images` is a `placeholder_with_default` whose default is
the decoded `image_bytes`, so feeding `images` skips decoding and the second
signature (an Estimator "receiver alternative") feeds the bytes. With
`ema.eval_with_ema` the PREDICT spec's Scaffold saver maps each EMA shadow
onto its weight; `Estimator.export_saved_model` restores with that saver and
stores it in the SavedModel, so the export holds the averaged weights.

Exports land in `<model_dir>/export/<timestamp>/` (`--mode=export`),
`export/best/<timestamp>/` (the best eval accuracy so far, with its
`eval_result.json`) and `export/latest/<timestamp>/` (train_and_eval).
"""

import json
import os
import shutil

import tensorflow as tf
from absl import logging

from estimator_cifar import rundir
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import augment, cifar
from estimator_cifar.engine import precision
from estimator_cifar.engine.estimator_setup import run_config
from estimator_cifar.errors import CheckpointError
from estimator_cifar.loaded_code import as_loaded
from estimator_cifar.model.keys import IMAGES_KEY
from estimator_cifar.model.model_fn import ModelParams, model_fn
from estimator_cifar.rundir import checkpoint_check, identity

EXPORT_DIR = "export"
IMAGES_INPUT = "images"
BYTES_INPUT = "image_bytes"
# Estimator names an alternative receiver's signatures "<receiver>:<output>".
BYTES_SIGNATURE = BYTES_INPUT + ":serving_default"
EVAL_RESULT_FILE = "eval_result.json"  # Beside saved_model.pb in export/best.
SIDE = cifar.SIDE                      # Every dataset's images: 32x32 RGB.


def decode_images(encoded: tf.Tensor) -> tf.Tensor:
  """Encoded images (string [N]) -> uint8 [N, 32, 32, 3], resized if needed."""

  def one(data):
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    same = tf.logical_and(tf.equal(tf.shape(image)[0], SIDE),
                          tf.equal(tf.shape(image)[1], SIDE))

    def resize():
      resized = tf.image.resize(tf.cast(image, tf.float32), [SIDE, SIDE],
                                antialias=True)
      return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    # Exactly the stored pixels when the size is already right.
    return tf.cond(same, lambda: tf.image.resize_with_crop_or_pad(image, SIDE, SIDE),
                   resize)

  return tf.map_fn(one, encoded, fn_output_signature=tf.TensorSpec(
      [SIDE, SIDE, 3], tf.uint8))


def preprocess(images: tf.Tensor, cfg: ExperimentConfig) -> tf.Tensor:
  """uint8 [N, 32, 32, 3] -> the model's float input: the eval transform."""
  return augment.eval_transform(images, cfg.data)


def serving_input_receiver_fn(cfg: ExperimentConfig):
  """The receiver fn for both signatures (see the module docstring)."""

  def receiver_fn():
    encoded = tf.compat.v1.placeholder_with_default(
        tf.constant([], tf.string), [None], name=BYTES_INPUT)
    images = tf.compat.v1.placeholder_with_default(
        decode_images(encoded), [None, SIDE, SIDE, 3], name=IMAGES_INPUT)
    return tf.estimator.export.ServingInputReceiver(
        features={IMAGES_KEY: preprocess(images, cfg)},
        receiver_tensors={IMAGES_INPUT: images},
        receiver_tensors_alternatives={BYTES_INPUT: {BYTES_INPUT: encoded}})

  return as_loaded(receiver_fn)


def export_model(estimator: tf.estimator.Estimator, cfg: ExperimentConfig,
                 export_base: str, checkpoint: str | None = None) -> str:
  """Writes a SavedModel under `export_base/<timestamp>/`; returns its path.

  The model_dir's label_names.txt, if any, goes to
  `assets.extra/label_names.txt` for clients.

  Raises:
    CheckpointError: the model_dir has no checkpoint to export.
  """
  checkpoint = checkpoint or tf.train.latest_checkpoint(estimator.model_dir)
  if not checkpoint:
    raise CheckpointError(
        f"Nothing to export: {estimator.model_dir} has no checkpoint. Train "
        "first (--mode=train_and_eval) or point --model_dir at a trained run.")
  labels = os.path.join(estimator.model_dir, rundir.LABELS_FILE)
  extra = {rundir.LABELS_FILE: labels} if os.path.isfile(labels) else None
  try:
    path = estimator.export_saved_model(
        export_base, serving_input_receiver_fn(cfg), assets_extra=extra,
        checkpoint_path=checkpoint)
  except ValueError as e:
    if "Could not load all requested variables" not in str(e):
      raise
    # The Estimator's message leads with advice about model_fn; the cause is
    # the first line of the wrapped NotFoundError.
    cause = str(e).split("Full Traceback:", 1)[-1].strip()
    raise identity.restore_error(cfg, estimator.model_dir, cause) from None
  path = path.decode() if isinstance(path, bytes) else path
  logging.info("Exported %s (weights: %s) to %s", checkpoint,
               "EMA" if cfg.ema.eval_with_ema else "raw", path)
  return path


def serving_estimator(cfg: ExperimentConfig, model_dir: str,
                      num_classes: int) -> tf.estimator.Estimator:
  """An Estimator on model_dir for export and predict: no data needed."""
  return tf.estimator.Estimator(model_fn=as_loaded(model_fn),
                                model_dir=model_dir, config=run_config(cfg, model_dir),
                                params=ModelParams(precision.resolve(cfg),
                                                   num_classes))


class BestAccuracyExporter(tf.estimator.Exporter):
  """Exports a SavedModel whenever eval accuracy beats every earlier export.

  Unlike tf.estimator.BestExporter, which re-exports unconditionally at the
  first evaluation after a restart (its `_has_exported` flag starts False),
  the best so far is read back from the `eval_result.json` kept beside each
  export, so a resumed run never replaces a better model with a worse one.
  Only the best export is kept.
  """

  def __init__(self, cfg: ExperimentConfig, name: str = "best"):
    self._cfg = cfg
    self._name = name

  @property
  def name(self):
    return self._name

  def export(self, estimator, export_path, checkpoint_path, eval_result,
             is_the_final_export):
    del is_the_final_export
    accuracy = float(eval_result["accuracy"])
    best = best_export(export_path)
    if best is not None and accuracy <= best[1]:
      return None
    path = export_model(estimator, self._cfg, export_path, checkpoint_path)
    with open(os.path.join(path, EVAL_RESULT_FILE), "w") as f:
      json.dump({"accuracy": accuracy,
                 "global_step": int(eval_result.get("global_step", -1)),
                 "checkpoint": os.path.basename(checkpoint_path)}, f)
    for old in os.listdir(export_path):
      if old != os.path.basename(path) and old.isdigit():
        shutil.rmtree(os.path.join(export_path, old), ignore_errors=True)
    logging.info("New best accuracy %.4f (was %s): %s", accuracy,
                 "none" if best is None else f"{best[1]:.4f}", path)
    return path


def best_export(export_path: str) -> tuple[str, float] | None:
  """(path, accuracy) of the best finished export under export_path, if any."""
  found = []
  if os.path.isdir(export_path):
    for entry in os.listdir(export_path):
      result = os.path.join(export_path, entry, EVAL_RESULT_FILE)
      if entry.isdigit() and os.path.isfile(result):
        with open(result) as f:
          found.append((os.path.dirname(result), float(json.load(f)["accuracy"])))
  return max(found, key=lambda pair: pair[1]) if found else None


def exporters(cfg: ExperimentConfig) -> list[tf.estimator.Exporter]:
  """The SavedModel exporters for train_and_eval's EvalSpec, per `eval.*`."""
  found = []
  if cfg.eval.export_best:
    found.append(BestAccuracyExporter(cfg))
  if cfg.eval.export_latest > 0:
    found.append(tf.estimator.LatestExporter(
        "latest", serving_input_receiver_fn(cfg),
        exports_to_keep=cfg.eval.export_latest))
  return found


def run_export(cfg: ExperimentConfig, model_dir: str, data_dir: str | None) -> str:
  """`--mode=export`: the newest checkpoint -> `<model_dir>/export/<timestamp>/`.

  Raises:
    CheckpointError: no checkpoint in model_dir.
    DataError: no label_names.txt in model_dir and no data to read names from.
  """
  checkpoint_check.newest_checkpoint(model_dir, "--mode=export")
  names = identity.label_names(cfg, model_dir, data_dir)
  if identity.read_label_names(model_dir) is None:
    identity.write_label_names(model_dir, names)
  estimator = serving_estimator(cfg, model_dir, len(names))
  path = export_model(estimator, cfg, os.path.join(model_dir, EXPORT_DIR))
  print(f"Exported: {path}", flush=True)
  return path
