"""A parameter-server cluster on loopback ends on time, by itself or on signals.

Real processes (tools/bench/fault_soak.py's Cluster: 1 ps, chief, 1 worker,
evaluator; tiny model) and real signals. Every limit is the promised time
times LOAD_MARGIN, scaled like every test limit by ESTIMATOR_CIFAR_TIME_SCALE
(testutil.seconds); docs/faults.md gives the times measured.
"""

import os
import re
import signal
import time

import pytest

from estimator_cifar.rundir import metrics_log, run_record
from tests import testutil
from tools.bench import fault_soak

pytestmark = [pytest.mark.slow,
              pytest.mark.timeout(testutil.MULTI_PROCESS_TIMEOUT_SECS)]

LOAD_MARGIN = 1.5  # The promised times hold on a machine with cores to spare.
# Four TensorFlow processes starting on few cores.
STARTUP_SECS = testutil.seconds(200)
STEP_LINE = re.compile(r"\bstep (\d+)/\d+, loss")


def limit(promised_secs: float) -> float:
  return testutil.seconds(promised_secs * LOAD_MARGIN)


@pytest.fixture
def make_cluster(tmp_path, cifar10_dir):
  made = []

  def make(steps, *overrides):
    model_dir = str(tmp_path / "run")
    cluster = fault_soak.Cluster(
        fault_soak.run_args(model_dir, cifar10_dir, steps, list(overrides)),
        str(tmp_path / "logs"))
    made.append(cluster)
    cluster.start()
    return cluster, model_dir

  yield make
  for cluster in made:
    cluster.kill_all()


def steps_logged(task) -> list[int]:
  return [int(m.group(1)) for m in STEP_LINE.finditer(task.output())]


def exit_within(task, seconds):
  """(exit code, seconds taken) of a task told to stop just now."""
  start = time.monotonic()
  code = task.wait(seconds)
  return code, time.monotonic() - start


def test_default_eval_settings_final_step_evaluated_and_all_exit_0(make_cluster):
  steps = 120
  cluster, model_dir = make_cluster(steps, "checkpoint.save_steps=40")
  chief = cluster["chief:0"]
  assert chief.wait(STARTUP_SECS) == 0, chief.output()[-3000:]
  chief_end = time.time()
  ended = cluster.wait_all(limit(60))
  for name, (code, _) in ended.items():
    assert code == 0, f"{name} exit {code}:\n{cluster[name].output()[-3000:]}"
  for name in ("ps:0", "evaluator:0"):
    assert ended[name][1] <= limit(60), (name, ended[name])
  rows = metrics_log.read(model_dir)
  final = rows[-1]
  assert final["global_step"] >= steps
  assert final["checkpoint"] == os.path.basename(
      fault_soak.check_model_dir(model_dir, steps)["latest"])
  assert final["time"] - chief_end <= limit(60)
  # eval.throttle_secs=600 (the default) spaces evaluations, but never holds
  # back the first one or the final one: at most those two in a short run.
  assert len(rows) <= 2, [r["checkpoint"] for r in rows]
  first = rows[0]
  written = os.path.getmtime(os.path.join(model_dir,
                                          first["checkpoint"] + ".index"))
  assert first["time"] - written <= limit(30), "first checkpoint picked up late"
  assert run_record.read(model_dir)["status"] == "finished"


def test_sigterm_to_each_task_type_and_restarts_continue(make_cluster):
  cluster, model_dir = make_cluster(10 ** 6, "checkpoint.save_steps=100",
                                    "log.every_steps=20")
  chief, worker = cluster["chief:0"], cluster["worker:0"]
  evaluator, ps = cluster["evaluator:0"], cluster["ps:0"]
  assert fault_soak.wait_until(
      lambda: all(t.ready() for t in (chief, worker, evaluator)) and
      metrics_log.read(model_dir), STARTUP_SECS), \
      {t.name: t.output()[-2000:] for t in (chief, worker, evaluator)}

  evaluator.signal(signal.SIGTERM)
  code, took = exit_within(evaluator, limit(10) + 30)
  assert code == 0 and took <= limit(10), (code, took, evaluator.output()[-2000:])

  # A worker stops after its step, comes back and trains on past that step.
  at_kill = max(steps_logged(worker))
  worker.signal(signal.SIGTERM)
  code, took = exit_within(worker, limit(30) + 30)
  assert code == 0 and took <= limit(30), (code, took, worker.output()[-2000:])
  assert "Preempted: resnet_sgd mode=train_and_eval" in worker.output()
  worker.start()
  assert fault_soak.wait_until(
      lambda: any(s > at_kill for s in steps_logged(worker)), STARTUP_SECS), \
      worker.output()[-2000:]

  # The chief saves at its step; restarted, it resumes from that checkpoint.
  chief.signal(signal.SIGTERM)
  code, took = exit_within(chief, limit(30) + 30)
  assert code == 0 and took <= limit(30), (code, took, chief.output()[-2000:])
  saved = re.search(r"Preempted: .* step=(\d+) .*; saved at step \1; run the "
                    r"same command to continue\.", chief.output())
  assert saved, chief.output()[-2000:]
  step = int(saved.group(1))
  assert os.path.exists(os.path.join(model_dir, f"model.ckpt-{step}.index"))
  assert run_record.read(model_dir)["status"] == "preempted"
  chief.start()
  assert fault_soak.wait_until(chief.ready, STARTUP_SECS), chief.output()[-2000:]
  assert run_record.read(model_dir)["start_step"] == step
  assert min(steps_logged(chief)) >= step

  ps.signal(signal.SIGTERM)
  code, took = exit_within(ps, limit(5) + 30)
  assert code == 0 and took <= limit(5), (code, took, ps.output()[-2000:])
