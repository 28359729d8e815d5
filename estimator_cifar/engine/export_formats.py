"""Export formats beside the SavedModel (`export.formats`): ONNX and TFLite.

Each is converted from the SavedModel's `serving_default` signature, so it
keeps the serving contract: input `images` uint8 [N, 32, 32, 3], the eval
transform and test-time views inside, outputs `classes`, `probabilities` and
`logits`. Each is then run on a fixed batch of eval images (seeded random
pixels where the run has no data at hand) and compared with the SavedModel;
the figures go to `export_info.json` under `formats`. A format past its
tolerance is deleted before the export is published, and the export fails
with an error naming it: the SavedModel still lands.
"""

import concurrent.futures
import os

import numpy as np
import tensorflow as tf
from absl import logging

from estimator_cifar import console, extras
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.data import cifar, sources
from estimator_cifar.data.source import DataSource
from estimator_cifar.errors import DataError, UserError, one_line

FILES = {"onnx": "model.onnx", "tflite": "model.tflite"}
LABEL_NAMES_KEY = "label_names"  # ONNX metadata: class names, one a line.
ONNX_OPSET = 17
FLOAT_MAX_LOGIT_DIFF = 1e-3      # Float formats: max |logit - SavedModel's|.
QUANTIZED_MIN_AGREEMENT = 0.99   # Quantized TFLite: top-1 agreement with float.
PARITY_IMAGES = 256              # Eval images each format is checked on.
REPRESENTATIVE_IMAGES = 1000     # Training images that calibrate int8.
PARITY_SEED = 0


class ExportFormatError(UserError):
  """A format that could not be converted, or disagrees with the SavedModel."""


def write_formats(cfg: ExperimentConfig, export_path: str,
                  class_names: list[str] | None,
                  source: DataSource | None) -> dict:
  """Writes each of `cfg.export.formats` into export_path and checks parity.

  Args:
    source: the run's data, for eval images and int8 calibration; None
      checks on seeded random pixels.

  Returns:
    {format: parity figures}, for export_info.json; a format that failed has
    `"error"` and its file is gone.
  """
  if not cfg.export.formats:
    return {}
  # Exporters run inside the training graph, which is finalized. A thread of
  # its own starts outside any graph (the graph stack is per thread): eager.
  with concurrent.futures.ThreadPoolExecutor(1) as thread:
    return thread.submit(_write_formats, cfg, export_path, class_names,
                         source).result()


def _write_formats(cfg: ExperimentConfig, export_path: str,
                   class_names: list[str] | None,
                   source: DataSource | None) -> dict:
  """write_formats, in eager mode."""
  images, labels = _split_images(source, "test", PARITY_IMAGES)
  reference = tf.saved_model.load(export_path).signatures["serving_default"](
      images=tf.constant(images))
  reference = {key: value.numpy() for key, value in reference.items()}
  class_names = class_names or [
      str(i) for i in range(reference["probabilities"].shape[1])]
  results = {}
  for name in cfg.export.formats:
    path = os.path.join(export_path, FILES[name])
    try:
      run = _CONVERTERS[name](cfg, export_path, path, class_names, source)
      results[name] = _parity(cfg, name, run(images), reference, labels)
    except ExportFormatError as e:
      results[name] = {"error": str(e)}
    results[name]["file"] = FILES[name]
    if "error" in results[name] and os.path.exists(path):
      os.remove(path)  # Nothing that looks valid stays.
    logging.info("Exported %s: %s", path, results[name])
  return results


def raise_failures(results: dict, export_path: str) -> None:
  """One ExportFormatError for the formats that failed, if any."""
  failed = {name: r["error"] for name, r in results.items() if "error" in r}
  if failed:
    raise ExportFormatError(
        " ".join(failed.values()) + f" The SavedModel was exported to "
        f"{export_path}; drop the format from export.formats to export "
        "without it.")


def onnx_class_names(session) -> list[str]:
  """The class names stored in an exported ONNX model's metadata."""
  return session.get_modelmeta().custom_metadata_map[LABEL_NAMES_KEY].split("\n")


def _parity(cfg: ExperimentConfig, name: str, got: dict, want: dict,
            labels: np.ndarray | None) -> dict:
  """The figures comparing `got` with the SavedModel's `want`, with an
  `error` past the tolerance."""
  agreement = float(np.mean(got["classes"] == want["classes"]))
  result = {"images": int(len(want["classes"])),
            "max_abs_logit_diff": float(np.abs(got["logits"] - want["logits"]).max()),
            "top1_agreement": agreement}
  quantized = name == "tflite" and cfg.export.tflite_quantize != "none"
  if quantized:
    result["quantize"] = cfg.export.tflite_quantize
    if labels is not None:
      result["accuracy"] = float(np.mean(got["classes"] == labels))
      result["float_accuracy"] = float(np.mean(want["classes"] == labels))
    ok = agreement >= QUANTIZED_MIN_AGREEMENT
    bound = f"top-1 agreement >= {QUANTIZED_MIN_AGREEMENT:.0%}"
  else:
    ok = result["max_abs_logit_diff"] <= FLOAT_MAX_LOGIT_DIFF and agreement == 1
    bound = f"max |logit diff| <= {FLOAT_MAX_LOGIT_DIFF:g}, top-1 agreement 100%"
  if not ok:
    result["error"] = (
        f"export.formats={name}: the {name} model disagrees with the "
        f"SavedModel on {result['images']} eval images (max |logit diff| "
        f"{result['max_abs_logit_diff']:.3g}, top-1 agreement "
        f"{agreement:.2%}; needed {bound}).")
  return result


def _to_onnx(cfg, export_path, path, class_names, source):
  """Converts with tf2onnx; returns a runner under onnxruntime."""
  del cfg, source
  purpose = "export.formats=onnx"
  tf2onnx = extras.require("tf2onnx", purpose)
  onnx = extras.require("onnx", purpose)
  ort = extras.require("onnxruntime", purpose)
  from tf2onnx import tf_loader
  try:
    graph_def, inputs, outputs, renames = tf_loader.from_saved_model(
        export_path, None, None, signatures=["serving_default"],
        return_tensors_to_rename=True)
    model, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=inputs, output_names=outputs, opset=ONNX_OPSET,
        tensors_to_rename=renames)
  except Exception as e:  # tf2onnx raises bare exceptions naming the op.
    raise ExportFormatError(f"export.formats=onnx: tf2onnx cannot convert "
                            f"this model: {one_line(e)}") from None
  onnx.helper.set_model_props(model, {LABEL_NAMES_KEY: "\n".join(class_names)})
  onnx.save(model, path)
  session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
  return lambda images: dict(zip(
      ("classes", "logits", "probabilities"),
      session.run(["classes", "logits", "probabilities"], {"images": images})))


def _to_tflite(cfg, export_path, path, class_names, source):
  """Converts with TensorFlow's converter; returns a runner."""
  del class_names
  converter = tf.lite.TFLiteConverter.from_saved_model(
      export_path, signature_keys=["serving_default"])
  if cfg.export.tflite_quantize != "none":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if cfg.export.tflite_quantize == "int8":
    train, _ = _split_images(source, "train", REPRESENTATIVE_IMAGES)
    converter.representative_dataset = lambda: ([train[i:i + 1]]
                                                for i in range(len(train)))
  try:
    with console.native_stderr_hidden():  # Its op summary, on every export.
      flatbuffer = converter.convert()
  except Exception as e:  # ConverterError and friends name the op.
    raise ExportFormatError(f"export.formats=tflite: the TFLite converter "
                            f"cannot convert this model: {one_line(e)}") from None
  with open(path, "wb") as f:
    f.write(flatbuffer)
  runner = tf.lite.Interpreter(model_path=path).get_signature_runner(
      "serving_default")
  return lambda images: runner(images=images)


_CONVERTERS = {"onnx": _to_onnx, "tflite": _to_tflite}


def available_source(cfg: ExperimentConfig,
                     data_dir: str | None) -> DataSource | None:
  """The run's data if it is at hand (synthetic, or a data_dir that exists),
  else None: checking an export never downloads a dataset."""
  if cfg.data.name != "synthetic" and not (data_dir and os.path.isdir(data_dir)):
    return None
  try:
    return sources.get_source(cfg, data_dir)
  except DataError as e:
    logging.info("Checking exports on random pixels: %s", one_line(e))
    return None


def _split_images(source: DataSource | None, split: str,
                  count: int) -> tuple[np.ndarray, np.ndarray | None]:
  """Up to `count` uint8 images and labels of a split of `source`, or seeded
  random pixels and no labels without one."""
  if source is not None:
    pairs = [(i.numpy(), l.numpy()) for i, l in source.records(split).take(count)]
    if pairs:
      return np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs])
  rng = np.random.RandomState(PARITY_SEED)
  return rng.randint(0, 256, [count, *cifar.CIFAR10.image_shape]).astype(
      np.uint8), None
