"""Gradient clipping under MirroredStrategy acts on the global batch's gradient."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import clip_probe, testutil

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def probe(cifar10_dir, tmp_path_factory):
  work = str(tmp_path_factory.mktemp("clip"))
  env = dict(os.environ, PYTHONPATH=testutil.REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_CONFIG", None)
  proc = subprocess.run(
      [sys.executable, os.path.join(testutil.REPO_ROOT, "tests", "clip_probe.py"),
       cifar10_dir, work], env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = next(l for l in proc.stdout.splitlines() if l.startswith("PROBE_JSON "))
  return json.loads(line[len("PROBE_JSON "):])


def test_two_replicas_clip_and_log_like_one_device(probe):
  assert probe["replicas"] == 2
  single, mirrored = probe["single"], probe["mirrored"]
  # Clipping is active: the true norm is far above the threshold.
  assert min(single["norms"].values()) > 4 * clip_probe.CLIP
  # The logged norm is the global batch's, not a replica's share of it.
  assert sorted(mirrored["norms"]) == sorted(single["norms"])
  for step, norm in single["norms"].items():
    assert mirrored["norms"][step] == pytest.approx(norm, rel=1e-4), step
  # The same update: every weight equal after two clipped steps.
  assert sorted(mirrored["variables"]) == sorted(single["variables"])
  moved = 0
  for name, value in single["variables"].items():
    # Float tolerance: the replicas sum their halves in another order.
    np.testing.assert_allclose(mirrored["variables"][name], value, rtol=1e-3,
                               atol=1e-5, err_msg=name)
    moved += "kernel" in name
  assert moved >= 3
