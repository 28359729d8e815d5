"""rundir/lock.py: one process per role writes a model_dir (no TensorFlow).

Holders and contenders are real processes; "another machine" is a lock file
naming another host, aged with os.utime.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from estimator_cifar import errors, rundir
from estimator_cifar.rundir import lock
from tests import testutil

# A process that takes the trainer lock of argv[1] once the file argv[2]
# exists (at once for ""), says how that went, and holds it until its stdin
# closes.
CONTENDER = """
import os, sys, time
from estimator_cifar.rundir import lock
model_dir, go = sys.argv[1], sys.argv[2]
print("READY", flush=True)
while go and not os.path.exists(go):
  time.sleep(0.001)
try:
  held = lock.acquire(model_dir, lock.TRAINER)
except Exception as e:
  print("REFUSED", e, flush=True)
  sys.exit(2)
print("WON", flush=True)
sys.stdin.read()
held.release()
"""


def start_contender(model_dir, go=""):
  proc = subprocess.Popen([sys.executable, "-c", CONTENDER, model_dir, go],
                          cwd=testutil.REPO_ROOT, env=testutil.subprocess_env(),
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
  return proc


def gone_pid() -> int:
  """The pid of a process that has exited and been reaped."""
  proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  return int(proc.stdout)


def write_lock(model_dir, age_secs=0.0, **fields):
  """A trainer lock as another process would have left it."""
  record = {"role": lock.TRAINER, "pid": 1, "host": "elsewhere",
            "boot_id": "b", "pid_namespace": 1, "process_start": "1",
            "started": "2026-01-01 00:00:00 UTC", "command": "python train.py",
            "token": "t0", **fields}
  path = lock.path(model_dir, lock.TRAINER)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(record, f)
  then = time.time() - age_secs
  os.utime(path, (then, then))
  return path


def test_the_lock_names_its_holder_and_goes_on_release(tmp_path):
  model_dir = str(tmp_path)
  with lock.held(model_dir, lock.TRAINER) as held:
    with open(held.path) as f:
      record = json.load(f)
    assert record["pid"] == os.getpid()
    assert record["process_start"] == lock.process_start(os.getpid())
    assert record["command"].startswith(sys.executable)
    assert held.path == os.path.join(model_dir, rundir.LOCK_DIR, "trainer.lock")
    # Another role is another lock.
    with lock.held(model_dir, lock.evaluator()):
      pass
  assert os.listdir(model_dir) == []  # The last lock out removes locks/.


def test_the_lock_is_released_when_the_block_raises(tmp_path):
  with pytest.raises(RuntimeError):
    with lock.held(str(tmp_path), lock.EXPORT):
      raise RuntimeError("boom")
  assert not os.path.exists(lock.path(str(tmp_path), lock.EXPORT))


def test_a_live_holder_is_named_and_the_second_process_writes_nothing(tmp_path):
  model_dir = str(tmp_path)
  holder = start_contender(model_dir)
  try:
    assert holder.stdout.readline().strip() == "WON"
    before = sorted(os.listdir(os.path.join(model_dir, rundir.LOCK_DIR)))
    with pytest.raises(errors.CheckpointError) as info:
      lock.acquire(model_dir, lock.TRAINER)
    message = str(info.value)
    assert f"pid {holder.pid} on host" in message
    assert "-c" in message and "another --model_dir" in message
    assert sorted(os.listdir(os.path.join(model_dir, rundir.LOCK_DIR))) == before
  finally:
    holder.communicate("", timeout=testutil.seconds(30))
  assert holder.returncode == 0
  assert not os.path.exists(lock.path(model_dir, lock.TRAINER))


def test_a_dead_holder_or_a_reused_pid_is_taken_over_with_a_log_line(
    tmp_path, caplog):
  here = lock.machine()
  for pid, start, why in (
      (gone_pid(), "1", "is gone"),
      (os.getpid(), "0", "is now another process")):
    model_dir = str(tmp_path / why.replace(" ", "_"))
    write_lock(model_dir, pid=pid, process_start=start, **here)
    caplog.clear()
    lock.acquire(model_dir, lock.TRAINER).release()
    took = [r.getMessage() for r in caplog.records if "Took over" in
            r.getMessage()]
    assert len(took) == 1 and f"pid {pid} {why}" in took[0], took


def test_another_machines_lock_holds_until_its_heartbeat_is_stale(tmp_path,
                                                                   caplog):
  model_dir = str(tmp_path)
  write_lock(model_dir, age_secs=lock.STALE_AFTER_SECS / 2)
  with pytest.raises(errors.CheckpointError, match="on host elsewhere"):
    lock.acquire(model_dir, lock.TRAINER)
  write_lock(model_dir, age_secs=lock.STALE_AFTER_SECS + 5)
  lock.acquire(model_dir, lock.TRAINER).release()
  assert any("its heartbeat stopped" in r.getMessage() for r in caplog.records)


def test_the_holder_touches_its_lock(tmp_path, monkeypatch):
  monkeypatch.setattr(lock, "HEARTBEAT_SECS", 0.05)
  with lock.held(str(tmp_path), lock.TRAINER) as held:
    old = time.time() - 1000
    os.utime(held.path, (old, old))
    testutil.wait_until(lambda: os.stat(held.path).st_mtime > old + 500, 10,
                        message="a heartbeat")


def test_of_many_processes_taking_over_one_stale_lock_one_wins(tmp_path):
  model_dir = str(tmp_path / "run")
  write_lock(model_dir, pid=gone_pid(), **lock.machine())
  go = str(tmp_path / "go")
  contenders = [start_contender(model_dir, go) for _ in range(6)]
  try:
    open(go, "w").close()
    lines = [c.stdout.readline() for c in contenders]
  finally:
    errs = [c.communicate("", timeout=testutil.seconds(30))[1]
            for c in contenders]
  said = [line.split(" ", 1)[0].strip() for line in lines]
  assert sorted(said) == ["REFUSED"] * 5 + ["WON"], (lines, errs)
  winner = contenders[said.index("WON")].pid
  refusals = [line for line in lines if line.startswith("REFUSED")]
  assert all(f"pid {winner} on host" in line for line in refusals), lines


def test_a_folder_of_other_files_is_refused_with_a_listing(tmp_path):
  for name in ("notes.txt", "photo.png", "a", "b", "c", "d"):
    (tmp_path / name).write_text("mine")
  with pytest.raises(errors.CheckpointError) as info:
    lock.check_is_run_or_empty(str(tmp_path))
  message = str(info.value)
  assert "a, b, c, d, notes.txt and 1 more" in message
  assert "new or empty folder" in message
  lock.check_is_run_or_empty(str(tmp_path / "new"))
  (tmp_path / "empty").mkdir()
  lock.check_is_run_or_empty(str(tmp_path / "empty"))
  for marker in ("config.json", "checkpoint", "model.ckpt-10.index",
                 "run_info.json", "locks", "sweep.log"):
    run = tmp_path / marker.replace(".", "_")
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    (run / marker).write_text("")
    lock.check_is_run_or_empty(str(run))


def test_a_stale_lock_that_another_process_is_taking_over_is_left_to_it(
    tmp_path, monkeypatch):
  """The claim decides: this process waits, then finds the new holder."""
  model_dir = str(tmp_path)
  path = write_lock(model_dir, pid=gone_pid(), **lock.machine())
  claim = f"{path}.takeover-t0"
  open(claim, "w").close()

  def other_process_finishes(_):
    write_lock(model_dir, pid=os.getpid(), token="t1", **lock.machine(),
               process_start=lock.process_start(os.getpid()))
    os.remove(claim)

  monkeypatch.setattr(lock.time, "sleep", other_process_finishes)
  with pytest.raises(errors.CheckpointError, match=f"pid {os.getpid()} on"):
    lock.acquire(model_dir, lock.TRAINER)


def test_a_claim_left_by_a_process_that_died_mid_takeover_expires(tmp_path):
  model_dir = str(tmp_path)
  path = write_lock(model_dir, pid=gone_pid(), **lock.machine())
  claim = f"{path}.takeover-t0"
  open(claim, "w").close()
  then = time.time() - lock.CLAIM_STALE_SECS - 1
  os.utime(claim, (then, then))
  lock.acquire(model_dir, lock.TRAINER).release()
  assert not os.path.exists(os.path.dirname(path))


def test_a_lock_that_cannot_be_written_is_one_user_error(tmp_path):
  (tmp_path / rundir.LOCK_DIR).write_text("not a folder")
  with pytest.raises(errors.CheckpointError, match="Cannot take the trainer lock"):
    lock.acquire(str(tmp_path), lock.TRAINER)
