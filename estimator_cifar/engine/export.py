"""SavedModel export: serving signatures, `--mode=export`, best/latest exporters.

Signatures (outputs `classes` int64 [N], `probabilities` and `logits` float32
[N, classes] in both):
- `serving_default`: input `images`, raw uint8 `IMAGE_SHAPE` (HWC, RGB, as
  stored in CIFAR). The eval transform (central crop to `data.image_size`,
  standardization) runs inside the graph, so clients send pixels, not floats.
- `image_bytes` (BYTES_SIGNATURE): input `image_bytes`, string [N] of encoded
  PNG/JPEG (GIF/BMP too), decoded to RGB and resized to SIDE x SIDE (32x32
  for CIFAR) if needed.

Both are one graph: `images` is a `placeholder_with_default` whose default is
the decoded `image_bytes`, so feeding `images` skips decoding and the second
signature (an Estimator "receiver alternative") feeds the bytes. With
`ema.eval_with_ema` the PREDICT spec's Scaffold saver maps each EMA shadow
onto its weight; `Estimator.export_saved_model` restores with that saver and
stores it in the SavedModel, so the export holds the averaged weights.

Exports land in `<model_dir>/export/<timestamp>/` (`--mode=export`),
`export/best/<timestamp>/` (the best validation accuracy so far: see
`eval.export_best`) and `export/latest/<timestamp>/` (train_and_eval). Each
returns the probabilities of its checkpoint's temperature
(engine/temperatures.py), named in its `export_info.json`.
"""

import hashlib
import os
import shutil
from collections.abc import Iterable

import tensorflow as tf
from absl import logging

from estimator_cifar import rundir
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import augment, cifar
from estimator_cifar.data.source import DataSource
from estimator_cifar.data.source import TEST
from estimator_cifar.engine import (export_dirs, export_formats, scoring,
                                    temperatures)
from estimator_cifar.engine.estimator_setup import serving_estimator  # noqa: F401 (callers)
from estimator_cifar.errors import CheckpointError
from estimator_cifar.loaded_code import as_loaded
from estimator_cifar.model.keys import IMAGES_KEY
from estimator_cifar.rundir import calibration, checkpoint_check, identity

EXPORT_DIR = "export"
IMAGES_INPUT = "images"
BYTES_INPUT = "image_bytes"
# Estimator names an alternative receiver's signatures "<receiver>:<output>".
BYTES_SIGNATURE = BYTES_INPUT + ":serving_default"
SIDE = cifar.SIDE                      # Every dataset's images' side.
IMAGE_SHAPE = [None, SIDE, SIDE, 3]    # What `serving_default` takes.


def decode_images(encoded: tf.Tensor) -> tf.Tensor:
  """Encoded images (string [N]) -> uint8 [N, SIDE, SIDE, 3], resized if needed."""

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


# decode_images as one graph, for Python callers (image folders, the Predictor):
# eagerly, map_fn would run Python per image, and errors would name no cause.
decode_encoded = tf.function(decode_images,
                             input_signature=[tf.TensorSpec([None], tf.string)])


def undecodable(encoded: Iterable[bytes]) -> tuple[int, str] | None:
  """(index, TensorFlow's reason) of the first image `decode_images` cannot
  decode, else None. A failed batch names no image; each is tried alone."""
  for index, data in enumerate(encoded):
    try:
      decode_encoded(tf.constant([data], tf.string))
    except tf.errors.InvalidArgumentError as e:
      return index, identity.error_cause(e.message)
  return None


def checked_request(request: tf.Tensor, shape: list, name: str) -> tf.Tensor:
  """`request` after run-time checks of its shape and a non-empty batch.

  A model server feeds tensors past the placeholder's declared shape: without
  these checks a rank-3 batch reaches the convolutions and aborts the process.
  A bad request now fails alone with InvalidArgumentError.
  """
  request = tf.ensure_shape(request, shape)
  non_empty = tf.debugging.assert_positive(
      tf.shape(request)[0], message=f"{name}: an empty batch; send at least "
      "one image")
  with tf.control_dependencies([non_empty]):
    return tf.identity(request)


def preprocess(images: tf.Tensor, cfg: ExperimentConfig) -> tf.Tensor:
  """uint8 [N, SIDE, SIDE, 3] -> the model's float input: the eval transform."""
  return augment.eval_transform(images, cfg.data)


def serving_input_receiver_fn(cfg: ExperimentConfig):
  """The receiver fn for both signatures (see the module docstring)."""

  def receiver_fn():
    encoded = tf.compat.v1.placeholder_with_default(
        tf.constant([], tf.string), [None], name=BYTES_INPUT)
    images = tf.compat.v1.placeholder_with_default(
        decode_images(checked_request(encoded, [None], BYTES_INPUT)),
        IMAGE_SHAPE, name=IMAGES_INPUT)
    return tf.estimator.export.ServingInputReceiver(
        features={IMAGES_KEY: preprocess(
            checked_request(images, IMAGE_SHAPE, IMAGES_INPUT), cfg)},
        receiver_tensors={IMAGES_INPUT: images},
        receiver_tensors_alternatives={BYTES_INPUT: {BYTES_INPUT: encoded}})

  return as_loaded(receiver_fn)


def export_model(estimator: tf.estimator.Estimator, cfg: ExperimentConfig,
                 export_base: str, checkpoint: str | None = None,
                 info: dict | None = None,
                 source: DataSource | None = None) -> str:
  """Writes an export under `export_base/<timestamp>/`, atomically.

  The folder holds the SavedModel, the model_dir's label_names.txt (if any)
  as `assets.extra/label_names.txt` for clients, the `export.formats` with
  their parity figures (export_formats), and `export_info.json`: the
  checkpoint and step it was made from, the formats, plus `info`. It appears
  only when complete (see export_dirs).

  Args:
    source: the run's data, to check the formats on; None: random pixels.

  Returns:
    The export's path.

  Raises:
    CheckpointError: the model_dir has no checkpoint to export.
    ExportFormatError: a format failed; the rest of the export landed.
  """
  checkpoint = checkpoint or tf.train.latest_checkpoint(estimator.model_dir)
  if not checkpoint:
    raise CheckpointError(
        f"Nothing to export: {estimator.model_dir} has no checkpoint. Train "
        "first (--mode=train_and_eval) or point --model_dir at a trained run.")
  temperature = temperatures.temperature_for(cfg, estimator.model_dir,
                                             checkpoint, source)
  if temperature != estimator.params.temperature:
    estimator = serving_estimator(cfg, estimator.model_dir,
                                  estimator.params.num_classes, temperature)
  labels = os.path.join(estimator.model_dir, rundir.LABELS_FILE)
  extra = {rundir.LABELS_FILE: labels} if os.path.isfile(labels) else None
  with export_dirs.staging(export_base) as staging:
    try:
      staged = estimator.export_saved_model(
          staging, serving_input_receiver_fn(cfg), assets_extra=extra,
          checkpoint_path=checkpoint)
    except ValueError as e:
      if "Could not load all requested variables" not in str(e):
        raise
      # The Estimator's message leads with advice about model_fn; the cause is
      # the first line of the wrapped NotFoundError.
      cause = str(e).split("Full Traceback:", 1)[-1].strip()
      raise identity.restore_error(cfg, estimator.model_dir, cause) from None
    staged = staged.decode() if isinstance(staged, bytes) else staged
    names = identity.read_label_names(estimator.model_dir) or (
        source.label_names if source else None)
    formats = export_formats.write_formats(cfg, staged, names, source)
    path = export_dirs.publish(staged, export_base, dict(
        info or {}, checkpoint=os.path.basename(checkpoint),
        global_step=rundir.checkpoint_step(checkpoint),
        config_sha256=config_digest(cfg), temperature=temperature,
        formats=formats))
  logging.info("Exported %s (weights: %s) to %s", checkpoint,
               "EMA" if cfg.ema.eval_with_ema else "raw", path)
  export_formats.raise_failures(formats, path)
  return path


def config_digest(cfg: ExperimentConfig) -> str:
  """A fingerprint of the config an export was made with (views, transform)."""
  return hashlib.sha256(cfg.to_json().encode()).hexdigest()


class _RunExporter(tf.estimator.Exporter):
  """An exporter of this run's exports (export_model), named for its folder."""

  def __init__(self, cfg: ExperimentConfig, source: DataSource | None,
               name: str):
    self._cfg = cfg
    self._source = source
    self._name = name

  @property
  def name(self):
    return self._name


class BestAccuracyExporter(_RunExporter):
  """Exports whenever eval accuracy beats every earlier export.

  The accuracy is of the split evaluations score during training: the
  validation split when the run holds one out (engine/scoring.py).

  Unlike tf.estimator.BestExporter, which re-exports unconditionally at the
  first evaluation after a restart (its `_has_exported` flag starts False),
  the best so far is read back from the `export_info.json` of each export, so
  a resumed run never replaces a better model with a worse one. Only the best
  export is kept.
  """

  def __init__(self, cfg: ExperimentConfig, source: DataSource | None):
    super().__init__(cfg, source, "best")

  def export(self, estimator, export_path, checkpoint_path, eval_result,
             is_the_final_export):
    del is_the_final_export
    accuracy = float(eval_result["accuracy"])
    best = best_export(export_path)
    if best is not None and accuracy <= best[1]:
      return None
    path = export_model(estimator, self._cfg, export_path, checkpoint_path,
                        info={"accuracy": accuracy,
                              "split": scoring.training_split(self._cfg)},
                        source=self._source)
    _remove_all_but(export_path, keep=[path])
    logging.info("New best accuracy %.4f (was %s): %s", accuracy,
                 "none" if best is None else f"{best[1]:.4f}", path)
    return path


class LatestExporter(_RunExporter):
  """Exports at every evaluation and keeps the `keep` newest exports."""

  def __init__(self, cfg: ExperimentConfig, source: DataSource | None,
               keep: int):
    super().__init__(cfg, source, "latest")
    self._keep = keep

  def export(self, estimator, export_path, checkpoint_path, eval_result,
             is_the_final_export):
    del eval_result, is_the_final_export
    path = export_model(estimator, self._cfg, export_path, checkpoint_path,
                        source=self._source)
    _remove_all_but(export_path,
                    keep=export_dirs.finished_exports(export_path)[-self._keep:])
    return path


def _remove_all_but(export_base: str, keep: list[str]) -> None:
  """Deletes the finished exports under export_base other than `keep`."""
  for path in export_dirs.finished_exports(export_base):
    if path not in keep:
      shutil.rmtree(path, ignore_errors=True)


def best_export(export_path: str) -> tuple[str, float] | None:
  """(path, accuracy) of the best finished export under export_path, if any."""
  infos = {path: export_dirs.read_info(path)
           for path in export_dirs.finished_exports(export_path)}
  found = [(path, float(info["accuracy"])) for path, info in infos.items()
           if "accuracy" in info]
  return max(found, key=lambda pair: pair[1]) if found else None


def exporters(cfg: ExperimentConfig,
              source: DataSource | None = None) -> list[tf.estimator.Exporter]:
  """The exporters for train_and_eval's EvalSpec, per `eval.*`; `source`
  (the run's data) checks the `export.formats`."""
  found = []
  if export_best(cfg):
    found.append(BestAccuracyExporter(cfg, source))
  if cfg.eval.export_latest > 0:
    found.append(LatestExporter(cfg, source, cfg.eval.export_latest))
  return found


def export_best(cfg: ExperimentConfig) -> bool:
  """Whether train_and_eval keeps `export/best` (`eval.export_best`).

  auto: only with a validation split to choose on. Turned on without one,
  it chooses on the test split, which inflates that split's figure: said
  once.
  """
  choice = cfg.eval.export_best
  on_test = scoring.training_split(cfg) == TEST
  if choice == "true" and on_test:
    logging.log_first_n(
        logging.WARNING, "eval.export_best=true without a validation split: "
        "export/best chooses its checkpoint on the test split, so its test "
        "accuracy is an optimistic figure. Hold images out with "
        "data.validation_size=N to choose on those instead.", 1)
  return choice == "true" or (choice == "auto" and not on_test)


def export_newest(cfg: ExperimentConfig, model_dir: str, data_dir: str | None,
                  reuse: bool = False, reader: str = "--mode=export") -> str:
  """The newest checkpoint -> `<model_dir>/export/<timestamp>/`; its path.

  Args:
    reuse: return an existing export of the newest checkpoint if there is one.
    reader: who asks, as `checkpoint_check.newest_checkpoint`'s messages name it.

  Raises:
    CheckpointError: no checkpoint in model_dir, or one that
      `checkpoint_check.newest_checkpoint` refuses.
    DataError: no label_names.txt in model_dir and no data to read names from.
  """
  checkpoint = checkpoint_check.newest_checkpoint(model_dir, reader)
  export_base = os.path.join(model_dir, EXPORT_DIR)
  if reuse:
    wanted = {"checkpoint": os.path.basename(checkpoint),
              "config_sha256": config_digest(cfg),
              "temperature": calibration.temperature(model_dir, checkpoint) or
                             temperatures.UNCALIBRATED}
    for path in reversed(export_dirs.finished_exports(export_base)):
      info = export_dirs.read_info(path)
      if all(info.get(key) == value for key, value in wanted.items()):
        return path
  names = identity.label_names(cfg, model_dir, data_dir)
  if identity.read_label_names(model_dir) is None:
    identity.write_label_names(model_dir, names)
  estimator = serving_estimator(cfg, model_dir, len(names))
  return export_model(estimator, cfg, export_base, checkpoint,
                      source=export_formats.available_source(cfg, data_dir))


def run_export(cfg: ExperimentConfig, model_dir: str, data_dir: str | None) -> str:
  """`--mode=export`: `export_newest`, printing the path."""
  path = export_newest(cfg, model_dir, data_dir)
  print(f"Exported: {path}", flush=True)
  return path
