"""A model_dir on a full filesystem (a small tmpfs): one error, nothing lost."""

import contextlib
import os
import subprocess

import pytest

from estimator_cifar.rundir import disk_space
from tests import testutil

pytestmark = [pytest.mark.slow,
              pytest.mark.timeout(testutil.MULTI_PROCESS_TIMEOUT_SECS)]


@contextlib.contextmanager
def small_tmpfs(path, size="4m"):
  os.makedirs(path)
  try:
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}",
                              "tmpfs", str(path)], capture_output=True)
  except OSError:
    mounted = None
  if mounted is None or mounted.returncode != 0:
    pytest.skip("cannot mount a tmpfs here (needs root)")
  try:
    yield str(path)
  finally:
    subprocess.run(["umount", "-l", str(path)], check=False)


def fill_until(mount, free_bytes):
  """Writes a filler file so that about `free_bytes` stay free."""
  extra = disk_space.free_bytes(mount) - free_bytes
  assert extra > 0
  with open(os.path.join(mount, "filler"), "wb") as f:
    f.write(b"\0" * extra)


def train(model_dir, data_dir, steps):
  return testutil.run_cli(
      "--experiment=resnet_sgd", "--mode=train", f"--model_dir={model_dir}",
      f"--data_dir={data_dir}",
      "--params_override=" + ",".join(testutil.TINY + [f"train.steps={steps}"]),
      timeout=300)


def assert_intact_at(model_dir, step):
  import tensorflow as tf
  with open(os.path.join(model_dir, "checkpoint")) as f:
    assert f'model_checkpoint_path: "model.ckpt-{step}"' in f.read()
  latest = tf.train.latest_checkpoint(model_dir)
  assert latest == os.path.join(model_dir, f"model.ckpt-{step}")
  reader = tf.train.load_checkpoint(latest)
  assert reader.get_tensor("global_step") == step
  assert not [n for n in os.listdir(model_dir) if disk_space.TF_TEMP.match(n)
              or ".tmp" in n]


@pytest.mark.parametrize("room", ["before_training", "during_training"])
def test_full_model_dir_is_one_error_and_the_checkpoint_survives(
    tmp_path, cifar10_dir, room):
  with small_tmpfs(tmp_path / "fs") as mount:
    model_dir = os.path.join(mount, "run")
    first = train(model_dir, cifar10_dir, 6)
    assert first.returncode == 0, first.stderr[-3000:]
    import tensorflow as tf
    need = disk_space.needed_bytes(model_dir,
                                   tf.train.latest_checkpoint(model_dir))
    # Before: less than a checkpoint is free, the check refuses to start.
    # During: the check passes, the event file and the save fill the disk.
    fill_until(mount, need // 3 if room == "before_training" else need + 20000)
    second = train(model_dir, cifar10_dir, 12)
    assert second.returncode == 2, second.stderr[-3000:]
    errors = [l for l in second.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, second.stderr[-3000:]
    assert f"model_dir {model_dir} is full" in errors[0]
    assert f"needs about {need / disk_space.MB:.1f} MB" in errors[0]
    assert "model.ckpt-6 is intact" in errors[0]
    assert "Traceback" not in second.stderr
    assert_intact_at(model_dir, 6)
    # With room again the same command continues from step 6.
    os.remove(os.path.join(mount, "filler"))
    third = train(model_dir, cifar10_dir, 12)
    assert third.returncode == 0, third.stderr[-3000:]
    assert_intact_at(model_dir, 12)
