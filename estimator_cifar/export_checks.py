"""Checks of the `export` config section (TF-free, called by validate())."""

from estimator_cifar.errors import ConfigError

# Formats written beside the SavedModel (engine/export_formats.py).
FORMATS = ("onnx", "tflite")
TFLITE_QUANTIZE = ("none", "dynamic", "int8")


def check(export) -> None:
  """Raises ConfigError for an unknown format or one named twice (the
  quantization is a choice: config_checks.CHOICES)."""
  for name in export.formats:
    if name not in FORMATS:
      hint = " (the SavedModel is always written)" if name == "saved_model" else ""
      raise ConfigError(
          f"export.formats has unknown '{name}'{hint}; the formats beside the "
          f"SavedModel are: {', '.join(FORMATS)}. Example: "
          "--params_override=export.formats=[onnx,tflite].")
  if len(set(export.formats)) != len(export.formats):
    raise ConfigError(f"export.formats={list(export.formats)} names a format "
                      "twice; name each once.")
