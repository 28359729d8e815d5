"""oneDNN's CPU kernels on every x86-64 CPU, not only on those TF picks.

TensorFlow 2.15 turns its oneDNN kernels on by itself only on CPUs with
AVX-512 VNNI/BF16 or AMX. On other x86-64 CPUs (AVX2 ones such as AMD EPYC)
it runs Eigen's kernels, which trained ResNet-20 at about half oneDNN's rate
(docs/performance.md). TF reads TF_ENABLE_ONEDNN_OPTS once, when it loads, so
`import estimator_cifar` decides before TensorFlow is imported. A value the
user set is kept, and child processes (cluster tasks, benchmark peers) inherit
the choice. TF-free.
"""

import os
import platform
import sys

ENV = "TF_ENABLE_ONEDNN_OPTS"
X86_64 = ("x86_64", "amd64")


def prefer_onednn(environ=os.environ, machine: str | None = None,
                  modules=sys.modules) -> str:
  """Sets ENV=1 where it is unset and still in time; returns what was done."""
  machine = (machine or platform.machine()).lower()
  if ENV in environ:
    return f"{ENV}={environ[ENV]}, as set in the environment"
  if machine not in X86_64:
    return f"TensorFlow's own default ({machine} is not x86-64)"
  if "tensorflow" in modules:
    return ("TensorFlow's own default (TensorFlow was imported before "
            f"estimator_cifar; set {ENV}=1 before importing it for oneDNN)")
  environ[ENV] = "1"
  return f"{ENV}=1, set by estimator_cifar (oneDNN kernels on this x86-64 CPU)"


# Decided once per process, on the package's first import.
CHOICE = prefer_onednn()
_logged = False


def log_once() -> None:
  """Logs CHOICE the first time a run builds its estimator."""
  global _logged
  if not _logged:
    _logged = True
    from absl import logging
    logging.info("CPU kernels: %s.", CHOICE)
