"""tools/bench/gpu_check: stops at once without a GPU; the plan and its time budget."""

import os
import subprocess
import sys

from tests.testutil import REPO_ROOT, seconds, subprocess_env
from tools.bench import gpu_check


def _env(tmp_path, nvidia_smi: str | None = None, version: str = "3.11") -> dict:
  """PATH with only a few shell tools, and a fake nvidia-smi if given.

  The fake "python" answers the version query with `version` and records
  every other call (an install) in python_ran, failing it as pip does offline.
  """
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for tool in ("dirname", "grep", "env", "bash"):
    for folder in ("/usr/bin", "/bin"):
      if os.path.exists(f"{folder}/{tool}"):
        os.symlink(f"{folder}/{tool}", bin_dir / tool)
        break
  if nvidia_smi is not None:
    script = bin_dir / "nvidia-smi"
    script.write_text(f"#!/bin/bash\n{nvidia_smi}\n")
    script.chmod(0o755)
  # A "python" that records being called: the script must not install.
  fake_python = tmp_path / "python"
  fake_python.write_text(
      f'#!/bin/bash\nif [ "$1" = -c ]; then echo {version}; exit 0; fi\n'
      f'echo "$@" >> {tmp_path}/python_ran\nexit 1\n')
  fake_python.chmod(0o755)
  return {"PATH": str(bin_dir), "PYTHON": str(fake_python), "HOME": str(tmp_path)}


def _run_script(env: dict) -> subprocess.CompletedProcess:
  """Runs tools/bench/gpu_check.sh with only `env` (fake tools on its PATH)."""
  return subprocess.run(["/bin/bash", os.path.join(REPO_ROOT, "tools/bench/gpu_check.sh")],
                        env=env, capture_output=True, text=True, timeout=seconds(60))


def test_script_without_nvidia_smi_fails_fast_before_installing(tmp_path):
  result = _run_script(_env(tmp_path))
  assert result.returncode == 2
  assert result.stderr.startswith("error: no NVIDIA GPU here")
  assert result.stdout == ""
  assert not (tmp_path / "python_ran").exists()


def test_script_with_a_driver_that_lists_no_gpu_fails_fast(tmp_path):
  result = _run_script(_env(tmp_path, "echo 'No devices were found'; exit 6"))
  assert result.returncode == 2 and "error: no NVIDIA GPU here" in result.stderr
  assert not (tmp_path / "python_ran").exists()


GPU_LISTED = "echo 'GPU 0: NVIDIA H200 (UUID: GPU-0)'"


def test_script_on_a_python_without_tensorflow_2_15_wheels_fails_before_installing(
    tmp_path):
  result = _run_script(_env(tmp_path, GPU_LISTED, version="3.12"))
  assert result.returncode == 2
  assert result.stderr.startswith("error: ") and "Python 3.12" in result.stderr
  assert "PYTHON=/path/to/python3.11" in result.stderr
  assert not (tmp_path / "python_ran").exists()


def test_script_without_a_package_index_fails_after_one_short_try(tmp_path):
  result = _run_script(_env(tmp_path, GPU_LISTED))
  assert result.returncode == 2 and result.stdout == ""
  assert result.stderr.splitlines()[-1].startswith("error: could not install")
  install = (tmp_path / "python_ran").read_text()
  assert "--retries 0" in install and "-e .[gpu]" in install


def test_module_without_gpu_exits_2_before_importing_tensorflow(tmp_path):
  env = subprocess_env(PATH=str(tmp_path))
  result = subprocess.run(
      [sys.executable, "-X", "importtime", "-m", "tools.bench.gpu_check"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=seconds(120))
  assert result.returncode == 2
  errors = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
  assert errors == [errors[0]] and "nvidia-smi is not on PATH" in errors[0]
  assert "tensorflow" not in result.stderr.replace(errors[0], "")
  assert result.stdout == ""


def test_plan_covers_every_model_precision_and_loop():
  jobs = gpu_check.plan()
  train = [j for j in jobs if j[0] == "train"]
  assert len(train) == 2 * 3 * 2 == len(set(train))
  assert {j[1] for j in train} == {"resnet20", "wrn28_10"}
  assert {j[3] for j in train} == {"1", "50"}
  assert ("eval", "resnet20") in jobs and ("eval", "wrn28_10") in jobs
  assert jobs[0] == ("pipeline", "resnet20")


def test_budget_and_failures_leave_nulls_named_in_skipped():
  now = [0.0]

  def measure(job):
    now[0] += 10
    if job == ("train", "resnet20", "float32", "50"):
      raise RuntimeError("out of memory")
    return {"images_per_sec": 1.0}

  out = gpu_check.run_all(measure, budget_secs=35, clock=lambda: now[0])
  results, skipped = out["results"], out["skipped"]
  assert len(results) == len(gpu_check.plan())
  ran = [k for k, v in results.items() if v is not None]
  # Started at 0, 10, 20 (fails) and 30 s; at 40 s the 35 s budget is spent.
  assert ran == ["pipeline/resnet20", "train/resnet20/float32/1",
                 "train/resnet20/mixed_float16/1"]
  assert skipped["train/resnet20/float32/50"] == "RuntimeError: out of memory"
  assert skipped["eval/wrn28_10"] == "budget spent"
