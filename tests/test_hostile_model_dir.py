"""A model_dir from elsewhere cannot hurt the user: what its files name is
checked against the folder before anything is read, written or deleted."""

import os

import pytest

from estimator_cifar.errors import CheckpointError
from estimator_cifar.rundir import checkpoint_check
from tests import testutil

VICTIM_SUFFIXES = (".index", ".meta", ".data-00000-of-00001")


def write_state(folder, newest, *listed):
  """A `checkpoint` state file naming `newest` and listing `listed` (raw)."""
  lines = [f'model_checkpoint_path: "{newest}"']
  lines += [f'all_model_checkpoint_paths: "{p}"' for p in listed]
  with open(os.path.join(folder, "checkpoint"), "w") as f:
    f.write("\n".join(lines) + "\n")


def write_victims(prefix):
  """Files a Saver would delete if it rotated checkpoint `prefix` out."""
  for suffix in VICTIM_SUFFIXES:
    with open(prefix + suffix, "w") as f:
      f.write("the user's work\n")


def snapshot(folder):
  """{relative path: (size, mtime_ns)} of every file under `folder`."""
  found = {}
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      stat = os.stat(path)
      found[os.path.relpath(path, folder)] = (stat.st_size, stat.st_mtime_ns)
  return found


@pytest.mark.slow
def test_training_refuses_a_state_file_naming_files_elsewhere(tmp_path,
                                                               cifar10_dir):
  model_dir = str(tmp_path / "run")
  rotate = ["checkpoint.save_steps=1", "checkpoint.keep_max=2"]

  def train(steps):
    return testutil.run_cli(
        "--experiment=resnet_sgd", "--mode=train", f"--model_dir={model_dir}",
        f"--data_dir={cifar10_dir}", "--params_override=" + ",".join(
            testutil.TINY + rotate + [f"train.steps={steps}"]))

  first = train(2)
  assert first.returncode == 0, first.stderr[-3000:]
  os.makedirs(tmp_path / "thesis")
  victims = [str(tmp_path / "thesis" / "chapter1"),
             str(tmp_path / "thesis" / "chapter2")]
  for victim in victims:
    write_victims(victim)
  # The oldest entries are the first a resumed run rotates out: one absolute,
  # one relative and written with the text format's octal escapes for `..`.
  write_state(model_dir, "model.ckpt-2", victims[0],
              r"\056\056/thesis/chapter2", "model.ckpt-1", "model.ckpt-2")
  before = snapshot(model_dir)

  second = train(6)

  error = testutil.error_line(second.returncode, second.stderr)
  assert f"state file {os.path.join(model_dir, 'checkpoint')} names " \
      f"{victims[0]}," in error
  for victim in victims:
    for suffix in VICTIM_SUFFIXES:
      assert os.path.exists(victim + suffix), victim + suffix
  assert snapshot(model_dir) == before  # Nothing written before the check.


@pytest.mark.parametrize("name", [
    "../other_run/model.ckpt-5",            # Up and out.
    "linked/model.ckpt-5",                  # Through a symlinked folder.
    "model.ckpt-*",                         # A pattern the Saver would expand.
    r"\056\056/other_run/model.ckpt-5",     # `..` in octal escapes.
])
def test_state_file_names_outside_the_folder_are_refused(tmp_path, name):
  folder = tmp_path / "run"
  os.makedirs(folder)
  os.makedirs(tmp_path / "other_run")
  os.symlink(tmp_path / "other_run", folder / "linked")
  write_state(str(folder), "model.ckpt-6", name, "model.ckpt-6")
  with pytest.raises(CheckpointError, match="is not a checkpoint in"):
    checkpoint_check.check_state_file(str(folder))


def test_state_file_names_inside_the_folder_are_accepted(tmp_path):
  folder = tmp_path / "run"
  os.makedirs(folder)
  os.symlink(folder, tmp_path / "alias")  # The model_dir given by a symlink.
  write_state(str(folder), str(folder / "model.ckpt-6"), "./model.ckpt-5",
              "model.ckpt-6")
  checkpoint_check.check_state_file(str(tmp_path / "alias"))
  checkpoint_check.check_state_file(str(tmp_path / "no_such_run"))


def test_state_file_without_a_newest_checkpoint_is_one_error(tmp_path):
  write_state(str(tmp_path), "", "model.ckpt-6")
  with pytest.raises(CheckpointError, match="names no model_checkpoint_path"):
    checkpoint_check.check_state_file(str(tmp_path))
