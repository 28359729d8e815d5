"""estimator_cifar: CIFAR experiments on TensorFlow's Estimator API.

The Python API (`train`, `evaluate`, `Predictor`) lives in `estimator_cifar.api`
and loads on first use, so `import estimator_cifar` stays light (no TensorFlow).
"""

# First, before anything imports TensorFlow: oneDNN kernels on x86-64 CPUs.
from estimator_cifar import cpu_kernels  # noqa: F401
from estimator_cifar.version import __version__  # noqa: F401

_API = ("train", "evaluate", "Predictor", "Prediction")
__all__ = list(_API)


def __getattr__(name):
  if name in _API:
    from estimator_cifar import api
    return getattr(api, name)
  raise AttributeError(f"module 'estimator_cifar' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_API))
