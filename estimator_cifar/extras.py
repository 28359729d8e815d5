"""Optional dependencies: imported on demand, with the pip extra to install.

The package itself needs only what setup.py's `install_requires` lists; the
tools (plots, throughput probes) need more, grouped as the `tools` extra.
"""

import importlib
import sys
from types import ModuleType

from estimator_cifar.errors import UserError

# Which extra of setup.py brings each optional module.
EXTRA_OF = {"matplotlib": "tools", "psutil": "tools", "tf2onnx": "export",
            "onnx": "export", "onnxruntime": "export"}


class MissingExtraError(UserError):
  """An optional dependency is not installed."""


def require(module: str, purpose: str) -> ModuleType:
  """Imports `module`, or raises MissingExtraError naming the extra to install.

  Args:
    module: the module to import, e.g. "matplotlib".
    purpose: what needs it, for the message, e.g. "tools/plot_curves.py".
  """
  try:
    return importlib.import_module(module)
  except ImportError:
    extra = EXTRA_OF.get(module.split(".")[0], "tools")
    raise MissingExtraError(
        f"{purpose} needs {module}, which is not installed. Install the "
        f"'{extra}' extra: pip install 'estimator_cifar[{extra}]' (from a "
        f"checkout: pip install -e '.[{extra}]').") from None


def require_or_exit(module: str, purpose: str) -> ModuleType:
  """`require` for a script's imports: prints `error: ...` and exits 2."""
  try:
    return require(module, purpose)
  except MissingExtraError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(e.exit_code)
