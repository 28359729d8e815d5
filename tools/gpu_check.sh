#!/usr/bin/env bash
# GPU speed in one command, on a CUDA machine: installs the package with its
# .[gpu] extra (TensorFlow's CUDA libraries) into the current Python, then
# prints ONE JSON line (see tools/gpu_check.py). Without a GPU it stops before
# installing anything: `error: ...` on stderr, exit 2.
#   tools/gpu_check.sh [--budget_secs=300 ...]      (PYTHON=... to pick a Python)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  echo "error: no NVIDIA GPU here (nvidia-smi is missing or lists no device):" \
       "tools/gpu_check.sh measures GPU speed and needs a CUDA machine with" \
       "the NVIDIA driver; on a CPU, measure with python -m tools.loop_bench." >&2
  exit 2
fi
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[gpu]' >&2
exec "$PYTHON" -m tools.gpu_check "$@"
