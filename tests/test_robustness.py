"""Bad input gets one clear paragraph and exit 2; faults lose nothing.

Most cases call the real CLI entry point (`run.run_main`, flags parsed as on a
command line) in-process, which is what a subprocess would run minus ~4 s of
TensorFlow import each; one case per kind of exit runs as a real subprocess.
"""

import errno
import glob
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
import tensorflow as tf

from estimator_cifar.rundir import checkpoint_check, checkpoint_step, run_record
from estimator_cifar.engine import modes
from estimator_cifar.data import cifar, fake
from estimator_cifar.errors import CheckpointError
from tests.testutil import (TINY, OutputReader, error_line, run_cli, seconds,
                            start_cli, tiny_config, wait_until)
from tests.testutil import cli_in_process as cli

OVERRIDES = "--params_override=" + ",".join(TINY)
CKPT = ["checkpoint.save_steps=3"]  # Checkpoints at steps 0, 3 and 6.
FIRST_STEP = re.compile(r"\] step \d+/\d+, loss = ")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar10_dir):
  """A model_dir trained 6 steps with checkpoints at steps 0, 3 and 6."""
  model_dir = str(tmp_path_factory.mktemp("trained") / "run")
  modes.run(tiny_config(*CKPT), model_dir, "train", cifar10_dir)
  return model_dir


def copy_of(model_dir: str, tmp_path) -> str:
  """A copy to damage (the state file holds relative names, so it moves)."""
  target = str(tmp_path / "run")
  shutil.copytree(model_dir, target)
  return target


# ---------------------------------------------------------------- bad config

@pytest.mark.parametrize("args, words", [
    (["--experiment=no_such_exp"],
     ["Unknown experiment 'no_such_exp'", "Known experiments", "resnet_sgd"]),
    (["--experiment=resnet_sgd", "--params_override=train.stepz=3"],
     ["Unknown config key 'train.stepz'", "Did you mean train.steps"]),
    (["--experiment=resnet_sgd", "--params_override=optimizer.lr=0.1"],
     ["Unknown config key 'optimizer.lr'", "Did you mean optimizer.learning_rate"]),
    (["--experiment=resnet_sgd", "--params_override=optimizer.learning_rate=fast"],
     ["Bad value for optimizer.learning_rate", "'fast' is not a number",
      "Example: --params_override=optimizer.learning_rate=0.1"]),
    (["--experiment=resnet_sgd", "--params_override=steps100"],
     ["Malformed --params_override 'steps100'", "section.field=value"]),
])
def test_config_errors(args, words, tmp_path, capsys):
  model_dir = tmp_path / "m"
  message = error_line(*cli(capsys, *args, f"--model_dir={model_dir}")[::2])
  for word in words:
    assert word in message
  assert not model_dir.exists()  # Nothing starts on a bad config.


def test_verbose_adds_the_traceback(tmp_path, capsys):
  code, _, err = cli(capsys, "--experiment=resnet_sgd", "--verbose",
                     "--params_override=train.stepz=3", f"--model_dir={tmp_path}")
  assert code == 2
  assert "Traceback" in err and "error: Unknown config key" in err


# ------------------------------------------------------------------ bad data

def _truncate_train_file(data_dir):
  path = os.path.join(data_dir, "cifar-10-batches-bin", "data_batch_2.bin")
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) - 100)
  return ["data_batch_2.bin", "not a whole number of cifar10 records",
          "Re-extract or re-download"]


def _bad_label(data_dir):
  path = os.path.join(data_dir, "cifar-10-batches-bin", "test_batch.bin")
  with open(path, "r+b") as f:
    f.seek(cifar.CIFAR10.record_bytes * 7)
    f.write(bytes([12]))
  return ["test_batch.bin: record 7 has label 12", "outside the 10 fine classes"]


def _cifar100_files(data_dir):
  shutil.rmtree(os.path.join(data_dir, "cifar-10-batches-bin"))
  fake.write_cifar100(data_dir, train=20, test=10)
  return ["holds cifar100 files", "--params_override=data.name=cifar100"]


def _bad_checksum(data_dir):
  shutil.rmtree(os.path.join(data_dir, "cifar-10-batches-bin"))
  with open(os.path.join(data_dir, "cifar-10-binary.tar.gz"), "wb") as f:
    f.write(b"not the archive")
  # Placed by the user (not downloaded here): moved aside, never deleted.
  return ["Checksum mismatch", "cifar-10-binary.tar.gz",
          "moved aside to " + os.path.join(data_dir,
                                           "cifar-10-binary.tar.gz.corrupt"),
          "not deleted"]


def _empty_dir(data_dir):
  shutil.rmtree(os.path.join(data_dir, "cifar-10-batches-bin"))
  return ["Could not download", "offline", "put it at",
          os.path.join(data_dir, "cifar-10-binary.tar.gz")]


def _data_dir_is_a_file(data_dir):
  shutil.rmtree(data_dir)
  open(data_dir, "w").close()
  return [f"--data_dir={data_dir} is a file, not a directory"]


@pytest.mark.parametrize("damage", [
    _truncate_train_file, _bad_label, _cifar100_files, _bad_checksum,
    _empty_dir, _data_dir_is_a_file])
def test_data_errors(damage, tmp_path, capsys, monkeypatch):
  # Offline: a mirror that does not exist fails at once.
  monkeypatch.setenv("ESTIMATOR_CIFAR_MIRROR", f"file://{tmp_path}/no_mirror")
  data_dir = str(tmp_path / "data")
  fake.write_cifar10(data_dir, train_per_file=8, test=10)
  words = damage(data_dir)
  model_dir = str(tmp_path / "m")
  message = error_line(*cli(capsys, "--experiment=resnet_sgd", "--mode=train",
                            f"--model_dir={model_dir}", f"--data_dir={data_dir}",
                            OVERRIDES)[::2])
  for word in words:
    assert word in message
  assert tf.train.latest_checkpoint(model_dir) is None
  assert not glob.glob(os.path.join(data_dir, "*.tar.gz"))  # Bad archive gone.
  assert run_record.read(model_dir)["status"] == run_record.FAILED


@pytest.mark.slow
def test_data_error_in_a_real_process(tmp_path):
  """The same contract from a real command line: exit 2, one line, no traceback."""
  data_dir = str(tmp_path / "data")
  fake.write_cifar10(data_dir, train_per_file=8, test=10)
  words = _bad_label(data_dir)
  proc = run_cli("--experiment=resnet_sgd", "--mode=train", f"--data_dir={data_dir}",
                 f"--model_dir={tmp_path / 'm'}", OVERRIDES, timeout=120)
  message = error_line(proc.returncode, proc.stderr)
  for word in words:
    assert word in message


# ---------------------------------------------------------------- warm start

def test_warm_start_from_missing_path(tmp_path, capsys, cifar10_dir):
  message = error_line(*cli(
      capsys, "--experiment=resnet_sgd", "--mode=train", OVERRIDES,
      f"--model_dir={tmp_path / 'm'}", f"--data_dir={cifar10_dir}",
      f"--warm_start_from={tmp_path / 'nowhere'}")[::2])
  assert f"--warm_start_from={tmp_path / 'nowhere'} is neither a directory" in message
  assert tf.train.latest_checkpoint(str(tmp_path / "m")) is None


@pytest.mark.slow
def test_warm_start_shapes_that_do_not_fit(tmp_path, capsys, trained, cifar100_dir):
  message = error_line(*cli(
      capsys, "--experiment=resnet_sgd", "--mode=train",
      OVERRIDES + ",data.name=cifar100", f"--model_dir={tmp_path / 'm'}",
      f"--data_dir={cifar100_dir}", f"--warm_start_from={trained}")[::2])
  assert "variable(s) cannot be initialized" in message
  assert "4 variable(s)" in message
  assert "tiny/logits/kernel (model [16, 100], checkpoint tiny/logits/kernel [16, 10])" \
      in message
  assert "warm_start.exclude" in message
  assert tf.train.latest_checkpoint(str(tmp_path / "m")) is None


# ----------------------------------------------------------------- model_dir

@pytest.mark.parametrize("where", ["file", "under_file"])
def test_model_dir_that_cannot_be_written(where, tmp_path, capsys):
  blocker = tmp_path / "blocker"
  blocker.write_text("x")
  model_dir = blocker if where == "file" else blocker / "run"
  message = error_line(*cli(capsys, "--experiment=resnet_sgd", "--mode=train",
                            OVERRIDES, f"--model_dir={model_dir}")[::2])
  assert f"--model_dir={model_dir}" in message
  assert ("is a file, not a directory" if where == "file"
          else "Cannot write to") in message
  assert blocker.read_text() == "x"


def test_model_dir_without_permission(tmp_path, monkeypatch):
  # Root may write anywhere (CI runs as root): the refusal is simulated where
  # the check meets the file system.
  locked = tmp_path / "locked"

  def refuse(path, *args, **kwargs):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

  monkeypatch.setattr(os, "makedirs", refuse)
  with pytest.raises(CheckpointError, match="Cannot write to --model_dir=.*"
                     "locked/run .Permission denied.*fix its permissions"):
    checkpoint_check.check_writable(str(locked / "run"))
  monkeypatch.undo()
  assert not locked.exists()


@pytest.mark.slow
def test_damaged_newest_checkpoint_named_then_resumed_from_previous(
    trained, tmp_path, capsys, cifar10_dir):
  model_dir = copy_of(trained, tmp_path)
  data = glob.glob(os.path.join(model_dir, "model.ckpt-6.data-*"))[0]
  with open(data, "r+b") as f:  # Torn write: the state file names step 6.
    f.truncate(100)
  args = ["--experiment=resnet_sgd", "--mode=train", f"--model_dir={model_dir}",
          f"--data_dir={cifar10_dir}", "--params_override=" + ",".join(TINY + CKPT)]
  message = error_line(*cli(capsys, *args)[::2])
  for word in ("newest checkpoint", "is damaged", "model.ckpt-6",
               "--resume_from_previous", "model.ckpt-3 (step 3)", "nothing is deleted"):
    assert word in message
  assert os.path.getsize(data) == 100  # Untouched without the flag.

  code, out, err = cli(capsys, *args, "--resume_from_previous")
  assert code == 0, err[-3000:]
  assert "Done: resnet_sgd mode=train step=6" in out
  assert run_record.read(model_dir)["start_step"] == 3
  moved = glob.glob(os.path.join(model_dir, "damaged_checkpoints", "*", "*"))
  assert sorted(os.path.basename(p) for p in moved) == sorted(
      ["model.ckpt-6.index", "model.ckpt-6.meta", os.path.basename(data)])
  # Both the good old checkpoint and the new step 6 read back whole.
  for step in (3, 6):
    assert checkpoint_check.checkpoint_problem(
        os.path.join(model_dir, f"model.ckpt-{step}")) is None


@pytest.mark.slow
def test_missing_index_or_state_file_is_named(trained, tmp_path):
  model_dir = copy_of(trained, tmp_path)
  os.remove(os.path.join(model_dir, "model.ckpt-6.index"))
  with pytest.raises(CheckpointError, match=r"model.ckpt-6.index is missing.*"
                     r"resume from model.ckpt-3 \(step 3\)"):
    checkpoint_check.check_checkpoints(model_dir)
  # A garbled state file: TensorFlow would ignore it and start from step 0.
  with open(os.path.join(model_dir, "checkpoint"), "w") as f:
    f.write("garbage {")
  with pytest.raises(CheckpointError, match="state file .* is unreadable.*"
                     "start over from step 0.*--resume_from_previous"):
    checkpoint_check.check_checkpoints(model_dir)
  checkpoint_check.check_checkpoints(model_dir, resume_from_previous=True)
  assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-3")
  checkpoint_check.check_checkpoints(model_dir)  # Now fine.
  # Nothing complete left: no flag can help, the message says how to start over.
  for path in glob.glob(os.path.join(model_dir, "model.ckpt-[03].data-*")):
    with open(path, "r+b") as f:
      f.truncate(10)
  with pytest.raises(CheckpointError, match="no earlier complete checkpoint"):
    checkpoint_check.check_checkpoints(model_dir, resume_from_previous=True)


@pytest.mark.slow
def test_kill_during_checkpoint_write_resumes_from_previous(trained, tmp_path, cifar10_dir):
  """SIGKILL mid-write: the data file is partial, the index and state not yet
  updated (TensorFlow renames data and index into place, then writes the state
  file). The rerun resumes from step 3 by itself and rewrites step 6."""
  model_dir = copy_of(trained, tmp_path)
  tf.compat.v1.train.update_checkpoint_state(
      model_dir, "model.ckpt-3", ["model.ckpt-0", "model.ckpt-3"])
  os.remove(os.path.join(model_dir, "model.ckpt-6.index"))
  temp = os.path.join(model_dir, "model.ckpt-6_temp", "part-00000-of-00001")
  os.makedirs(os.path.dirname(temp))
  shutil.move(glob.glob(os.path.join(model_dir, "model.ckpt-6.data-*"))[0], temp)
  with open(temp, "r+b") as f:
    f.truncate(50)
  modes.run(tiny_config(*CKPT), model_dir, "train", cifar10_dir)
  assert run_record.read(model_dir)["start_step"] == 3
  latest = tf.train.latest_checkpoint(model_dir)
  assert checkpoint_step(latest) == 6 and checkpoint_check.checkpoint_problem(latest) is None


# -------------------------------------------------------------------- faults

@pytest.mark.slow
def test_sigterm_saves_at_the_current_step_and_exits_0(tmp_path, cifar10_dir):
  model_dir = str(tmp_path / "run")
  # Periodic checkpoints far apart: whatever is saved comes from SIGTERM.
  overrides = TINY + ["train.steps=100000", "checkpoint.save_steps=100000"]
  proc = start_cli(
      "--experiment=resnet_sgd", "--mode=train_and_eval",
      f"--model_dir={model_dir}", f"--data_dir={cifar10_dir}",
      "--params_override=" + ",".join(overrides),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  output = OutputReader(proc)
  try:
    # SIGTERM once a train step has run (hooks.ProgressHook logs step 1).
    wait_until(lambda: proc.poll() is not None or
               any(FIRST_STEP.search(line) for line in output.err), timeout=120,
               message="the first train step")
    assert proc.poll() is None, "".join(output.err)[-3000:]
    proc.send_signal(signal.SIGTERM)
    sent = time.time()
    proc.wait(timeout=seconds(60))
    took = time.time() - sent
  finally:
    proc.kill()
    proc.wait()
  out, err = output.text()
  assert proc.returncode == 0, err[-3000:]
  assert took < seconds(15), f"took {took:.1f}s to stop"
  assert "Traceback" not in err
  latest = tf.train.latest_checkpoint(model_dir)
  step = checkpoint_step(latest)
  assert step > 0 and checkpoint_check.checkpoint_problem(latest) is None
  assert f"Preempted: resnet_sgd mode=train_and_eval step={step}" in out
  record = run_record.read(model_dir)
  assert record["status"] == "preempted" and record["final_step"] == step
  # The rerun continues from it.
  modes.run(tiny_config(f"train.steps={step + 2}"), model_dir, "train",
                cifar10_dir)
  assert run_record.read(model_dir)["start_step"] == step
  assert checkpoint_step(tf.train.latest_checkpoint(model_dir)) == step + 2


# ------------------------------------------------------------ tested elsewhere
# The NaN/Inf stop and its finite-checkpoint guard are tested in test_hooks.py;
# malformed TF_CONFIG in test_distribute.py; continuous eval against deleted
# checkpoints in test_continuous_eval.py.
