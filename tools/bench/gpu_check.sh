#!/usr/bin/env bash
# GPU speed in one command, on a CUDA machine: installs the package with its
# .[gpu] extra (TensorFlow's CUDA libraries) into the current Python, then
# prints ONE JSON line (see tools/bench/gpu_check.py). Without a GPU, on a Python
# that TensorFlow 2.15 has no wheels for, or with no package index reachable,
# it stops within seconds: `error: ...` on stderr, exit 2.
#   tools/bench/gpu_check.sh [--budget_secs=300 ...]      (PYTHON=... to pick a Python)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python}"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  echo "error: no NVIDIA GPU here (nvidia-smi is missing or lists no device):" \
       "tools/bench/gpu_check.sh measures GPU speed and needs a CUDA machine with" \
       "the NVIDIA driver; on a CPU, measure with python -m tools.bench.loop_bench." >&2
  exit 2
fi
# TensorFlow 2.15 ships wheels for CPython 3.9-3.11 only; setup.py's python_requires
# asks for 3.10+.
version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
case "$version" in
  3.10|3.11) ;;
  *)
    echo "error: ${PYTHON} is Python ${version:-(not runnable)}, and TensorFlow 2.15" \
         "(the last release with tf.estimator) installs on Python 3.10 or 3.11 only:" \
         "run with PYTHON=/path/to/python3.11 tools/bench/gpu_check.sh, or in a 3.11" \
         "virtual environment." >&2
    exit 2;;
esac
# One short try: a machine without a package index should fail now, not after
# pip's default retries.
if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --retries 0 \
    --timeout 20 -e '.[gpu]' >&2; then
  echo "error: could not install the package with its .[gpu] extra (TensorFlow" \
       "2.15 and its CUDA 12 libraries): pip found no usable package" \
       "index. Run this where PyPI or a mirror is reachable (PIP_INDEX_URL), or" \
       "install '.[gpu]' from local wheels first (pip install --no-index" \
       "--find-links=DIR -e '.[gpu]') and run python -m tools.bench.gpu_check." >&2
  exit 2
fi
exec "$PYTHON" -m tools.bench.gpu_check "$@"
