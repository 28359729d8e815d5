"""A model_dir from elsewhere cannot hurt the user: what its files name is
checked against the folder before anything is read, written or deleted."""

import glob
import json
import os
import shutil
import subprocess

import pytest

from estimator_cifar.errors import CheckpointError
from estimator_cifar.rundir import checkpoint_check, disk_space
from tests import testutil
from tests.test_faults_disk import small_tmpfs

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


# ------------------------------------------- reading modes on a bad folder

READING_MODES = ("eval", "export", "predict")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar10_dir):
  """A model_dir trained 2 steps: checkpoints 0 and 2."""
  from estimator_cifar.engine import modes
  model_dir = str(tmp_path_factory.mktemp("trained") / "run")
  modes.run(testutil.tiny_config("train.steps=2"), model_dir, "train",
            cifar10_dir)
  return model_dir


@pytest.fixture(scope="module")
def image(tmp_path_factory):
  """A PNG for --mode=predict."""
  import numpy as np
  from PIL import Image
  path = str(tmp_path_factory.mktemp("images") / "cat.png")
  Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(path)
  return path


def copy_of(model_dir, target):
  shutil.copytree(model_dir, target)
  return str(target)


def read_mode(capsys, mode, model_dir, cifar10_dir, image):
  """`--mode=MODE` on model_dir in this process: (status, stdout, stderr);
  in a new one (as a user runs it) when `capsys` is None."""
  args = (f"--mode={mode}", f"--model_dir={model_dir}",
          f"--data_dir={cifar10_dir}",
          *([f"--images={image}"] if mode == "predict" else []))
  if capsys is None:
    done = testutil.run_cli(*args)
    return done.returncode, done.stdout, done.stderr
  return testutil.cli_in_process(capsys, *args)


def leftovers(model_dir):
  """Temp files of failed writes anywhere under model_dir."""
  return [os.path.join(root, n) for root, dirs, files in os.walk(model_dir)
          for n in dirs + files if disk_space.TF_TEMP.match(n) or ".tmp" in n]


def damage_newest(model_dir):
  data = glob.glob(os.path.join(model_dir, "model.ckpt-2.data-*"))[0]
  os.truncate(data, os.path.getsize(data) // 2)  # A copy cut short.


@pytest.mark.parametrize("mode", READING_MODES)
def test_reading_modes_name_a_damaged_checkpoint(trained, tmp_path, capsys,
                                                 cifar10_dir, image, mode):
  model_dir = copy_of(trained, tmp_path / "run")
  damage_newest(model_dir)
  code, _, err = read_mode(capsys, mode, model_dir, cifar10_dir, image)
  error = testutil.error_line(code, err)
  assert f"--mode={mode} cannot read the newest checkpoint in {model_dir}: " \
      "model.ckpt-2 cannot be read" in error
  assert "--resume_from_previous" in error


def test_warm_start_names_a_damaged_checkpoint(trained, tmp_path, capsys,
                                               cifar10_dir):
  source = copy_of(trained, tmp_path / "source")
  damage_newest(source)
  code, _, err = testutil.cli_in_process(
      capsys, "--experiment=resnet_sgd", "--mode=train",
      f"--model_dir={tmp_path / 'new'}", f"--data_dir={cifar10_dir}",
      f"--warm_start_from={source}",
      "--params_override=" + ",".join(testutil.TINY + ["train.steps=1"]))
  error = testutil.error_line(code, err)
  assert f"--warm_start_from={source}: the checkpoint is damaged: " \
      "model.ckpt-2 cannot be read" in error
  assert not glob.glob(str(tmp_path / "new" / "model.ckpt-*"))


@pytest.mark.parametrize("mode", READING_MODES)
@pytest.mark.parametrize("section, field, value", [
    ("train", "batch_size", "sixteen"), ("model", "depth", [20]),
    ("optimizer", "learning_rate", True)])
def test_reading_modes_name_a_wrong_typed_config_json(
    trained, tmp_path, capsys, cifar10_dir, image, mode, section, field, value):
  model_dir = copy_of(trained, tmp_path / "run")
  path = os.path.join(model_dir, "config.json")
  with open(path) as f:
    values = json.load(f)
  values[section][field] = value
  with open(path, "w") as f:
    json.dump(values, f)
  code, _, err = read_mode(capsys, mode, model_dir, cifar10_dir, image)
  error = testutil.error_line(code, err)
  assert f"{path}: Bad value for {section}.{field}: {value!r} is not" in error


def remount_read_only(mount):
  done = subprocess.run(["mount", "-o", "remount,ro", mount],
                        capture_output=True)
  if done.returncode != 0:
    pytest.skip("cannot remount a tmpfs read-only here")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["eval", "export"])
def test_reading_modes_on_a_read_only_model_dir(trained, tmp_path,
                                                cifar10_dir, image, mode):
  with small_tmpfs(tmp_path / "fs") as mount:
    model_dir = copy_of(trained, os.path.join(mount, "run"))
    remount_read_only(mount)
    code, _, err = read_mode(None, mode, model_dir, cifar10_dir, image)
    error = testutil.error_line(code, err)
    assert f"Cannot write to --model_dir={model_dir} (Read-only file " \
        "system)" in error


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["eval", "export"])
def test_reading_modes_on_a_full_model_dir_leave_no_temp_files(
    trained, tmp_path, cifar10_dir, image, mode):
  with small_tmpfs(tmp_path / "fs") as mount:
    model_dir = copy_of(trained, os.path.join(mount, "run"))
    before = snapshot(model_dir)
    fill_up(mount)
    code, _, err = read_mode(None, mode, model_dir, cifar10_dir, image)
    error = testutil.error_line(code, err)
    assert f"The filesystem of model_dir {model_dir} is full" in error
    assert "model.ckpt-2 is intact" in error
    assert not leftovers(model_dir)
    after = snapshot(model_dir)
    assert {k: after[k] for k in before} == before  # Nothing overwritten.


def fill_up(mount):
  """Fills the filesystem at `mount` to the last byte."""
  with open(os.path.join(mount, "filler"), "wb") as f:
    try:
      while True:
        f.write(b"\0" * 65536)
        f.flush()
    except OSError:
      pass


def test_a_meta_graph_cut_short_by_a_full_disk_is_cleaned_up(tmp_path):
  # Training's Saver writes the meta graph last, through TensorFlow's atomic
  # write: on a full disk its temp file stayed behind.
  from tensorflow.python.lib.io import file_io
  with small_tmpfs(tmp_path / "fs", size="1m") as mount:
    fill_up(mount)
    meta = os.path.join(mount, "model.ckpt-4.meta")
    with pytest.raises(Exception) as raised:
      file_io.atomic_write_string_to_file(meta, b"x" * 200000)
    assert disk_space.NO_SPACE in str(raised.value)
    left = [n for n in os.listdir(mount) if n.startswith("model.ckpt-4.meta")]
    assert left, "TensorFlow no longer leaves a temp file: drop this test"
    assert disk_space.remove_temp_files(mount) == left
    assert not [n for n in os.listdir(mount) if n != "filler"]


# --------------------------------------------------------- the metrics log

TORN = b'{"accuracy": 0.5, "checkpoint": "model.ckpt-1", "glo'


def test_eval_after_a_torn_line_sets_it_aside_and_keeps_every_row(
    trained, tmp_path, capsys, caplog, cifar10_dir, image):
  from estimator_cifar.rundir import metrics_log
  model_dir = copy_of(trained, tmp_path / "run")
  log = metrics_log.path(model_dir)
  os.makedirs(os.path.dirname(log))
  whole = json.dumps({"accuracy": 0.25, "checkpoint": "model.ckpt-0",
                      "global_step": 0}) + "\n"
  with open(log, "wb") as f:
    f.write(whole.encode() + TORN)

  code, _, err = read_mode(capsys, "eval", model_dir, cifar10_dir, image)

  assert code == 0, err[-3000:]
  with open(log + metrics_log.TORN_SUFFIX + "1", "rb") as f:
    assert f.read() == TORN  # Moved aside, byte for byte.
  with open(log) as f:
    lines = f.read().splitlines()
  assert lines[0] == whole.strip()
  assert [json.loads(line)["checkpoint"] for line in lines] == \
      ["model.ckpt-0", "model.ckpt-2"]
  assert "moved it into" in caplog.text


def test_torn_lines_never_overwrite_an_earlier_one(tmp_path):
  from estimator_cifar.rundir import metrics_log
  log = str(tmp_path / "metrics.jsonl")
  for number in (1, 2):
    with open(log, "ab") as f:
      f.write(TORN + str(number).encode())
    assert metrics_log.set_aside_torn_line(log) == \
        f"{log}{metrics_log.TORN_SUFFIX}{number}"
  assert os.path.getsize(log) == 0
  with open(f"{log}{metrics_log.TORN_SUFFIX}1", "rb") as f:
    assert f.read() == TORN + b"1"
  assert metrics_log.set_aside_torn_line(log) is None  # Nothing torn now.


def test_reader_skips_lines_that_are_not_rows_with_one_warning(tmp_path,
                                                                caplog):
  from estimator_cifar.rundir import metrics_log
  log = metrics_log.path(str(tmp_path))
  os.makedirs(os.path.dirname(log))
  with open(log, "wb") as f:
    f.write(b'{"global_step": 1}\n[1, 2]\n\xff\xfe garbage\n\n'
            b'{"global_step": 2}\n' + TORN)
  assert metrics_log.read(str(tmp_path)) == [{"global_step": 1},
                                             {"global_step": 2}]
  warnings = [r for r in caplog.records if "not JSON rows" in r.getMessage()]
  assert len(warnings) == 1
  assert "skipped 3 line(s)" in warnings[0].getMessage()
  assert "line 2, 3, 6" in warnings[0].getMessage()


@pytest.mark.parametrize("holds_data", [True, False])
def test_a_recorded_data_dir_is_read_from_never_downloaded_into(
    trained, tmp_path, cifar10_dir, holds_data):
  from estimator_cifar.rundir import recorded, run_record
  model_dir = copy_of(trained, tmp_path / "run")
  named = cifar10_dir if holds_data else str(tmp_path / "someone_elses")
  os.makedirs(named, exist_ok=True)
  record = run_record.read(model_dir)
  record["data_dir"] = named
  with open(run_record.path(model_dir), "w") as f:
    json.dump(record, f)
  _, data_dir = recorded.setup("eval", model_dir, None, [], None)
  assert data_dir == (named if holds_data else None)
  assert holds_data or not os.listdir(named)


def test_a_link_out_of_the_model_dir_is_refused_before_a_write(
    trained, tmp_path, capsys, cifar10_dir, image):
  model_dir = copy_of(trained, tmp_path / "run")
  elsewhere = tmp_path / "users_folder"
  os.makedirs(elsewhere)
  os.symlink(elsewhere, os.path.join(model_dir, "eval"))  # metrics.jsonl's.
  code, _, err = read_mode(capsys, "eval", model_dir, cifar10_dir, image)
  error = testutil.error_line(code, err)
  assert f"{os.path.join(model_dir, 'eval')} in the model_dir is a symbolic " \
      f"link to {elsewhere}" in error
  assert not os.listdir(elsewhere)


def test_links_inside_the_model_dir_are_accepted(tmp_path):
  os.makedirs(tmp_path / "run" / "export")
  os.symlink(tmp_path / "run" / "export", tmp_path / "run" / "exports")
  checkpoint_check.check_links(str(tmp_path / "run"))


def test_continuous_eval_skips_a_damaged_checkpoint(trained, tmp_path, caplog,
                                                    cifar10_dir):
  from estimator_cifar.data.input_pipeline import make_input_fn
  from estimator_cifar.engine import continuous_eval, estimator_setup
  model_dir = copy_of(trained, tmp_path / "run")
  damage_newest(model_dir)
  cfg = testutil.tiny_config("train.steps=2")
  plan = estimator_setup.make_plan(cfg, cifar10_dir)
  estimator = estimator_setup.make_estimator(cfg, model_dir, plan)
  input_fn = make_input_fn(cfg, plan.source, training=False)
  damaged, good = (os.path.join(model_dir, f"model.ckpt-{s}") for s in (2, 0))
  assert continuous_eval.evaluate_one(estimator, input_fn, damaged) is None
  assert continuous_eval.evaluate_one(estimator, input_fn, good)[
      "global_step"] == 0
  assert "Checkpoint model.ckpt-2 cannot be read (model.ckpt-2 cannot be " \
      "read: Read less bytes than requested); skipping it." in caplog.text


def test_training_goes_on_after_a_run_record_of_the_wrong_shape(
    trained, tmp_path, capsys, cifar10_dir):
  from estimator_cifar.rundir import run_record
  model_dir = copy_of(trained, tmp_path / "run")
  with open(run_record.path(model_dir), "w") as f:
    json.dump({"history": 5, "status": ["running"], "config": "x"}, f)
  code, _, err = testutil.cli_in_process(
      capsys, "--experiment=resnet_sgd", "--mode=train",
      f"--model_dir={model_dir}", f"--data_dir={cifar10_dir}",
      "--params_override=" + ",".join(testutil.TINY + ["train.steps=3"]))
  assert code == 0, err[-3000:]
  record = run_record.read(model_dir)
  assert record["status"] == run_record.FINISHED
  assert record["history"] == [{"status": ["running"], "config": "x"}]


def test_a_config_json_section_that_is_not_an_object_is_one_error(
    trained, tmp_path, capsys, cifar10_dir, image):
  model_dir = copy_of(trained, tmp_path / "run")
  path = os.path.join(model_dir, "config.json")
  with open(path) as f:
    values = json.load(f)
  values["model"] = ["tiny"]
  with open(path, "w") as f:
    json.dump(values, f)
  code, _, err = read_mode(capsys, "eval", model_dir, cifar10_dir, image)
  assert f"{path}: Bad section model: ['tiny'] is not a map" in \
      testutil.error_line(code, err)


def test_warm_start_refuses_a_folder_whose_state_file_leads_elsewhere(
    trained, tmp_path):
  from estimator_cifar.engine import warm_start
  source = copy_of(trained, tmp_path / "downloaded")
  write_state(source, "model.ckpt-2", str(tmp_path / "thesis" / "chapter1"),
              "model.ckpt-2")
  with pytest.raises(CheckpointError, match="chapter1, which is not a "
                     "checkpoint in"):
    warm_start.find_checkpoint(source)
