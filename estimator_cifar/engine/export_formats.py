"""Export formats beside the SavedModel: ONNX and TFLite, with parity checks."""

LABEL_NAMES_KEY = "label_names"  # ONNX metadata: class names, one a line.


def onnx_class_names(session) -> list[str]:
  """The class names stored in an exported ONNX model's metadata."""
  return session.get_modelmeta().custom_metadata_map[LABEL_NAMES_KEY].split("\n")
