"""Where the gRPC servers of a TF_CONFIG cluster listen, and that users are told.

TensorFlow 2.15 binds every server to all interfaces whatever host the cluster
spec names (engine/distribute.py says where); these tests check on a real ps
process that the warning names the address the kernel shows, and that the
launcher says the same for a whole cluster. Only loopback is ever connected to.
"""

import io
import json
import logging
import signal

import psutil
import pytest

from estimator_cifar.engine import distribute
from tests import testutil
from tools import launch_local_cluster

WILDCARD_HOSTS = ("0.0.0.0", "::")  # gRPC's "0.0.0.0" may bind dual-stack "::".


def cluster(role: str, index: int = 0, **jobs) -> distribute.Cluster:
  jobs = jobs or {"chief": ["127.0.0.1:2001"], "ps": ["127.0.0.1:2002"]}
  return distribute.Cluster(jobs, role, index)


def exposure_lines(caplog) -> list[str]:
  return [r.getMessage() for r in caplog.records
          if r.levelno == logging.WARNING and "listens on" in r.getMessage()]


@pytest.mark.parametrize("role,port,mode", [("ps", 2002, "train"),
                                            ("ps", 2002, "train_and_eval"),
                                            ("chief", 2001, "train_and_eval")])
def test_a_server_task_in_a_training_cluster_names_its_open_port(
    caplog, role, port, mode):
  distribute.warn_if_exposed(cluster(role), mode)
  [line] = exposure_lines(caplog)
  assert line.startswith(f"{role}:0 listens on 0.0.0.0:{port},")
  assert distribute.FENCING_DOC in line


@pytest.mark.parametrize("task,mode", [
    (cluster("evaluator"), "train_and_eval"),  # Estimator starts no server.
    (cluster("chief"), "eval"),
    (cluster("chief"), "train"),  # Estimator.train starts no server.
    (cluster("chief", chief=["127.0.0.1:2001"]), "train_and_eval"),  # Alone.
    (None, "train")])
def test_tasks_that_start_no_server_warn_of_nothing(caplog, task, mode):
  distribute.warn_if_exposed(task, mode)
  assert exposure_lines(caplog) == []


def test_the_fencing_section_the_warning_points_to_exists():
  path, _, anchor = distribute.FENCING_DOC.partition("#")
  with open(f"{testutil.REPO_ROOT}/{path}", encoding="utf-8") as f:
    headings = [line.lstrip("#").strip().lower().replace(" ", "-")
                for line in f if line.startswith("#")]
  assert anchor in headings


def listening_hosts(pid: int, port: int) -> list[str]:
  return [c.laddr.ip for c in psutil.Process(pid).net_connections("inet")
          if c.status == psutil.CONN_LISTEN and c.laddr.port == port]


@pytest.mark.slow
def test_a_real_ps_task_warns_of_the_address_it_really_listens_on(tmp_path):
  chief_port, ps_port = testutil.closed_port(), testutil.closed_port()
  spec = {"chief": [f"127.0.0.1:{chief_port}"], "ps": [f"127.0.0.1:{ps_port}"]}
  log_path = tmp_path / "ps.log"
  with open(log_path, "w") as log:
    proc = testutil.start_cli(
        "--experiment=resnet_sgd", f"--model_dir={tmp_path / 'run'}",
        "--params_override=" + ",".join(testutil.TINY),
        stdout=log, stderr=log, env=testutil.subprocess_env(
            TF_CONFIG=json.dumps({"cluster": spec,
                                  "task": {"type": "ps", "index": 0}})))
  try:
    testutil.wait_until(lambda: listening_hosts(proc.pid, ps_port),
                        timeout=120, interval=0.2, message="the ps server")
    hosts = listening_hosts(proc.pid, ps_port)
    # What the cluster spec asks (127.0.0.1) is not what TensorFlow does.
    assert set(hosts) <= set(WILDCARD_HOSTS), hosts
    testutil.wait_until(lambda: "listens on" in log_path.read_text(),
                        timeout=30, message="the exposure warning")
    text = log_path.read_text()
    assert f"ps:0 listens on 0.0.0.0:{ps_port}," in text
    assert text.count("listens on") == 1  # Once per task.
  finally:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=testutil.seconds(60))
  assert code == 0, log_path.read_text()[-3000:]


def test_the_launcher_says_which_ports_of_its_cluster_are_open(tmp_path):
  out = io.StringIO()
  # An unknown experiment: every task exits at once with an error.
  code = launch_local_cluster.main(
      ["--workers=1", "--ps=1", "--no-evaluator", "--",
       "--experiment=no_such_experiment", f"--model_dir={tmp_path}"], out=out)
  assert code == 1
  lines = out.getvalue().splitlines()
  spec = json.loads(lines[0].removeprefix("[launcher] cluster "))
  ports = [a.rpartition(":")[2] for hosts in spec.values() for a in hosts]
  [warning] = [l for l in lines if l.startswith("[launcher] warning: ")]
  assert warning.startswith("[launcher] warning: The cluster listens on " +
                            ", ".join(f"0.0.0.0:{p}" for p in ports) + ",")
