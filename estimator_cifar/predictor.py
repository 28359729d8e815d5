"""`Predictor`: class names and probabilities from a trained run, served from memory.

  predictor = estimator_cifar.Predictor("/tmp/run")   # loads once
  predictor(images_uint8).labels                      # then milliseconds a call
  predictor(["cat.png", "pngs/"]).files               # files and folders too
  predictor.reload()                                  # a newer checkpoint

The model is the run's export of its newest checkpoint (exported first if there
is none), loaded once into a TensorFlow session held open, or an ONNX file
given directly (onnxruntime, the `export` extra). Calls from several threads
at once are safe: a call reads the loaded (model, class names) pair once, and
`reload()` swaps in a whole new pair.
"""

import dataclasses
import os
import threading
from collections.abc import Sequence

import numpy as np
from absl import logging

from estimator_cifar import paths
from estimator_cifar.data import cifar, image_files
from estimator_cifar.errors import DataError

ImageInput = np.ndarray | bytes | str | os.PathLike | Sequence
CHUNK = 128          # Images per model call: bounds memory, stays in cache.
# What the exports take as arrays: every dataset's shape (data/cifar.py).
IMAGE_SHAPE = cifar.CIFAR10.image_shape


@dataclasses.dataclass
class Prediction:
  """What `Predictor` returns for N images of C classes."""
  classes: np.ndarray        # int64 [N]: the most likely class index.
  labels: np.ndarray         # str [N]: its name.
  probabilities: np.ndarray  # float32 [N, C]: softmax over the classes.
  class_names: list[str]     # The C names, in class-index order.
  files: list[str] | None = None  # The image file of each row, for file input.


class Predictor:
  """Class names and probabilities from a trained model_dir or an ONNX file.

  Takes uint8 images `[N, *IMAGE_SHAPE]` (32x32 for CIFAR; or one image
  without N) in RGB, as CIFAR stores them; encoded PNG/JPEG `bytes` (or a
  list of them); or image file paths, a folder meaning its image files. The
  eval transform, test-time views and, under `ema.eval_with_ema`, the
  averaged weights are those of the export.
  Images of another size are resized to the dataset spec's side, with a
  warning.
  """

  def __init__(self, model_dir: str, overrides=None, data_dir: str | None = None,
               experiment: str | None = None):
    """Loads the model.

    Args:
      model_dir: a trained run's folder, or an exported `.onnx` file.
      overrides: config overrides, as for `estimator_cifar.evaluate`.
      data_dir: where to read class names if the run kept none.
      experiment: the experiment, for a model_dir without `config.json`.

    Raises:
      UserError subclasses: no checkpoint, a damaged one, a missing extra.
    """
    from estimator_cifar import api
    api.show_logs()
    self.model_dir = paths.expand(model_dir)
    self._lock = threading.Lock()
    if self.model_dir.endswith(".onnx") and os.path.isfile(self.model_dir):
      self.config = None
      model = _OnnxModel(self.model_dir)
      self._served = (model, model.class_names)
      return
    from estimator_cifar.rundir import recorded
    self.config, self._data_dir = recorded.setup(
        "predict", self.model_dir, experiment, api.override_strings(overrides),
        paths.expand(data_dir))
    self.reload()

  def reload(self) -> str:
    """Loads the export of the model_dir's newest checkpoint, exporting it
    first if needed; returns the export's path. Calls in flight finish on the
    model they started with."""
    if self.config is None:
      return self.model_dir  # An ONNX file: nothing newer to find.
    from estimator_cifar.engine import export
    from estimator_cifar.rundir import identity
    with self._lock:
      # Checked by rundir.checkpoint_check.newest_checkpoint, once.
      path = export.export_newest(self.config, self.model_dir, self._data_dir,
                                  reuse=True, reader="Predictor")
      names = identity.label_names(self.config, self.model_dir, self._data_dir)
      self._served = (_SavedModel(path), names)
      self.export_path = path
    logging.info("Predictor loaded %s", path)
    return path

  @property
  def class_names(self) -> list[str]:
    """The class names, in class-index order."""
    return list(self._served[1])

  def __call__(self, images: ImageInput) -> Prediction:
    return self.predict(images)

  def predict(self, images: ImageInput) -> Prediction:
    """Predicts arrays, encoded bytes or image files; see the class docstring.

    Raises:
      DataError: an array of the wrong type or shape, empty input, or bytes or
        files that are not images.
    """
    model, names = self._served  # One read: reload() may swap the pair.
    files = None
    if isinstance(images, np.ndarray):
      pixels = checked_array(images)
    else:
      if isinstance(images, (str, os.PathLike, bytes)):
        images = [images]
      if all(isinstance(item, bytes) for item in images):
        encoded = list(images)
      else:
        files = _image_files(images)
        encoded = [_read(path) for path in files]
      pixels = decoded(encoded, files)
    probs = np.concatenate([model.probabilities(pixels[i:i + CHUNK])
                            for i in range(0, len(pixels), CHUNK)])
    classes = np.argmax(probs, axis=1).astype(np.int64)
    return Prediction(classes=classes,
                      labels=np.array([names[c] for c in classes]),
                      probabilities=probs.astype(np.float32),
                      class_names=list(names), files=files)


class _SavedModel:
  """An export's `serving_default` in a session held open.

  A TF1 session's callable costs a third of the per-call time of the same
  signature loaded as a TF2 function (about 4 vs 12 ms for one image through
  ResNet-20 on 2 cores); Session.run is thread-safe.
  """

  def __init__(self, path: str):
    import tensorflow as tf
    graph = tf.Graph()
    self._session = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
      meta = tf.compat.v1.saved_model.load(
          self._session, [tf.saved_model.SERVING], path)
    signature = meta.signature_def["serving_default"]
    tensor = lambda info: graph.get_tensor_by_name(info.name)
    self._call = self._session.make_callable(
        tensor(signature.outputs["probabilities"]),
        feed_list=[tensor(signature.inputs["images"])])

  def probabilities(self, images: np.ndarray) -> np.ndarray:
    return self._call(images)


class _OnnxModel:
  """An exported `.onnx` file under onnxruntime, with its class names."""

  def __init__(self, path: str):
    from estimator_cifar import extras
    from estimator_cifar.engine import export_formats
    ort = extras.require("onnxruntime", "Predictor on an .onnx file")
    self._session = ort.InferenceSession(path,
                                         providers=["CPUExecutionProvider"])
    self.class_names = export_formats.onnx_class_names(self._session)

  def probabilities(self, images: np.ndarray) -> np.ndarray:
    return self._session.run(["probabilities"], {"images": images})[0]


def checked_array(images: np.ndarray) -> np.ndarray:
  """uint8 [N, *IMAGE_SHAPE] from `images`, or a DataError saying how to get it."""
  shape = ", ".join(map(str, IMAGE_SHAPE))
  if images.ndim == 3:
    images = images[None]
  if images.size == 0:
    raise DataError(f"Predictor got an empty array {images.shape}: pass at "
                    f"least one uint8 image [{shape}].")
  if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
    raise DataError(f"Predictor takes uint8 images [N, {shape}] (RGB, as "
                    f"CIFAR stores them), got shape {images.shape}. Pass image "
                    "files or bytes for other sizes: they are resized.")
  if images.dtype != np.uint8:
    raise DataError(f"Predictor takes uint8 pixels 0-255, got {images.dtype} "
                    f"{_value_range(images)}. {_conversion_hint(images)}")
  return images


def _value_range(images: np.ndarray) -> str:
  if not np.issubdtype(images.dtype, np.number) or np.iscomplexobj(images):
    return ""
  return f"in [{images.min():g}, {images.max():g}]"


def _conversion_hint(images: np.ndarray) -> str:
  """How to convert `images` to uint8 without losing them."""
  if np.issubdtype(images.dtype, np.floating) and images.min() >= 0:
    if images.max() <= 1:
      return ("These look like pixels scaled to [0, 1]: convert with "
              "np.round(x * 255).astype(np.uint8) (np.asarray(x, np.uint8) "
              "would make them zeros).")
    if images.max() <= 255:
      return "Convert with np.round(x).astype(np.uint8)."
  if np.issubdtype(images.dtype, np.integer) and images.min() >= 0 \
      and images.max() <= 255:
    return "Convert with x.astype(np.uint8)."
  return "Pass pixels 0-255 as np.uint8, RGB, as CIFAR stores them."


def decoded(encoded: list[bytes], files: list[str] | None = None) -> np.ndarray:
  """Encoded images -> uint8 [N, *IMAGE_SHAPE], as the `image_bytes`
  signature decodes them; warns about each image resized.

  Raises:
    DataError: empty input, a PNG/JPEG header claiming more pixels than
      `image_files.max_pixels()`, or bytes that are not an image (naming which).
  """
  import tensorflow as tf
  from estimator_cifar.engine import export
  names = files or [f"image {i} (bytes)" for i in range(len(encoded))]
  if not encoded:
    raise DataError("Predictor got no images: pass uint8 arrays, PNG/JPEG "
                    "bytes or image files.")
  for name, data in zip(names, encoded):
    if not data:
      raise DataError(f"Predictor: {name} is empty (0 bytes): pass PNG or "
                      "JPEG bytes.")
    size = image_files.check_encoded(data, name)  # Before decoding: bombs.
    if size and size != (cifar.SIDE, cifar.SIDE):
      logging.warning("Predictor: %s is %dx%d (width x height), not %dx%d: "
                      "resized to %dx%d, as the model was trained on.", name,
                      size[0], size[1], cifar.SIDE, cifar.SIDE, cifar.SIDE,
                      cifar.SIDE)
  try:
    return export.decode_encoded(tf.constant(encoded, tf.string)).numpy()
  except tf.errors.InvalidArgumentError:
    found = export.undecodable(encoded)  # One of them is bad: name it.
    if found is None:
      raise
  raise DataError(f"Predictor could not decode {names[found[0]]}: it is not a "
                  "PNG, JPEG, GIF or BMP image, or it is damaged.") from None


def _image_files(items: Sequence) -> list[str]:
  """Image files of `items` (files and folders), checked."""
  from estimator_cifar.engine import predict
  return predict.image_paths([str(item) for item in items], source="Predictor")


def _read(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()
