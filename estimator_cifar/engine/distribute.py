"""`distribute.*` as tf.distribute strategies, and the cluster in `TF_CONFIG`.

One experiment runs on one device, on several local devices or on a cluster
without changing tools: this module turns `distribute.strategy` into the
`train_distribute` / `eval_distribute` of Estimator's RunConfig and checks the
`TF_CONFIG` cluster description before TensorFlow would misread it.

  default                one device; with a TF_CONFIG that lists `ps` tasks the
                         Estimator does asynchronous parameter-server training
                         by itself (between-graph replication).
  mirrored               synchronous all-reduce over the local GPUs (all, or the
                         first `distribute.num_gpus`); on a CPU-only machine over
                         `distribute.num_cpu_devices` logical CPU devices.
  central_storage        the same replicas, variables kept once on the CPU.
  multi_worker_mirrored  synchronous collective all-reduce across the `chief`
                         and `worker` tasks of TF_CONFIG (train_and_eval only).
  parameter_server       the Estimator's own ps training: `default` plus a
                         TF_CONFIG with `ps`, `chief`, `worker` (and optionally
                         `evaluator`) tasks, which this value insists on.

The global batch is `train.batch_size` under every strategy: synchronous
strategies split it across replicas (the input_fn batches its share), and in
parameter-server training every step of every worker is one batch of that size.
So `optimizer.scale_lr_with_batch` scales with the global batch everywhere.
"""

import dataclasses
import json
import os
from typing import Mapping

from absl import logging

from estimator_cifar import rundir
from estimator_cifar.config import SYNC_LOCAL_STRATEGIES as SYNC_LOCAL
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.engine import TRAIN_MODES
from estimator_cifar.errors import ConfigError

TF_CONFIG_ENV = "TF_CONFIG"
ROLES = ("chief", "master", "worker", "ps", "evaluator")
CHIEF_ROLES = rundir.CHIEF_ROLES
# TF_CONFIG examples for messages; the README shows the same shapes.
PS_EXAMPLE = ('{"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222"], '
              '"ps": ["host2:2222"]}, "task": {"type": "worker", "index": 0}}')
MWMS_EXAMPLE = ('{"cluster": {"chief": ["host0:2222"], "worker": '
                '["host1:2222"]}, "task": {"type": "chief", "index": 0}}')
# TensorFlow 2.15 cannot bind its gRPC server to the host a cluster spec
# names: GrpcServer::Init (core/distributed_runtime/rpc/grpc_server_lib.cc)
# calls AddListeningPort(StrCat("0.0.0.0:", requested_port)), and ServerDef
# has a `port` but no host field. Every server task's port is open to the network.
GRPC_LISTEN_HOST = "0.0.0.0"
FENCING_DOC = "docs/guide.md#fencing-a-cluster"


@dataclasses.dataclass(frozen=True)
class Cluster:
  """A checked TF_CONFIG: the jobs and which task this process is."""
  jobs: dict[str, list[str]]
  task_type: str
  task_index: int

  @property
  def has_ps(self) -> bool:
    return bool(self.jobs.get("ps"))

  @property
  def num_workers(self) -> int:
    """Training tasks: the chief (or master) and the workers."""
    return sum(len(self.jobs.get(role, [])) for role in CHIEF_ROLES + ("worker",))

  @property
  def has_chief(self) -> bool:
    return any(self.jobs.get(role) for role in CHIEF_ROLES)

  @property
  def is_chief(self) -> bool:
    """The task that writes checkpoints and config.json (`rundir.is_chief`)."""
    return rundir.is_chief(self.task_type, self.task_index,
                           [role for role, tasks in self.jobs.items() if tasks])

  @property
  def own_port(self) -> int | None:
    """This task's port in the cluster spec; None when it is not listed."""
    hosts = self.jobs.get(self.task_type, [])
    if self.task_index >= len(hosts):
      return None  # An evaluator need not be listed.
    return int(hosts[self.task_index].rpartition(":")[2])

  @property
  def worker_index(self) -> int:
    """0 for the chief, then 1.. for workers (chief-less: the worker index)."""
    if self.task_type in CHIEF_ROLES:
      return 0
    return self.task_index + (1 if self.has_chief else 0)


def read_tf_config(environ: Mapping[str, str] | None = None) -> Cluster | None:
  """Parses and checks TF_CONFIG; None when it is unset or names no cluster.

  RunConfig reads TF_CONFIG too, but a typo there surfaces as a KeyError deep
  in Estimator or as a task that waits forever for a peer; checking it first
  turns those into one message that names the problem.

  Raises:
    ConfigError: malformed JSON, no `task`, an unknown role, an index out of
      range or a cluster that cannot train (ps without a chief).
  """
  environ = os.environ if environ is None else environ
  text = environ.get(TF_CONFIG_ENV, "").strip()
  if not text:
    return None
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise ConfigError(f"TF_CONFIG is not valid JSON ({e}): {text!r}. Example: "
                      f"TF_CONFIG='{PS_EXAMPLE}'") from None
  if not isinstance(data, dict):
    raise ConfigError(f"TF_CONFIG must be a JSON object with 'cluster' and "
                      f"'task', got {text!r}. Example: TF_CONFIG='{PS_EXAMPLE}'")
  jobs, task = data.get("cluster") or {}, data.get("task")
  if not jobs and not task:
    return None
  if not isinstance(jobs, dict) or not jobs:
    raise ConfigError("TF_CONFIG has a 'task' but no 'cluster' mapping each "
                      f"role to a list of host:port addresses. Example: "
                      f"TF_CONFIG='{PS_EXAMPLE}'")
  for role, addresses in jobs.items():
    if role not in ROLES:
      raise ConfigError(f"TF_CONFIG cluster has unknown role '{role}'; roles "
                        f"are {', '.join(ROLES)}.")
    if not isinstance(addresses, list) or not all(
        isinstance(a, str) and ":" in a for a in addresses):
      raise ConfigError(f"TF_CONFIG cluster['{role}'] must be a list of "
                        f"'host:port' strings, got {addresses!r}.")
  if not isinstance(task, dict) or "type" not in task:
    raise ConfigError("TF_CONFIG has a cluster but no 'task' saying which "
                      "member this process is: add "
                      "\"task\": {\"type\": \"worker\", \"index\": 0}.")
  role, index = task["type"], task.get("index", 0)
  if role not in ROLES:
    raise ConfigError(f"TF_CONFIG task type '{role}' is not a role; use one "
                      f"of {', '.join(ROLES)}.")
  if not isinstance(index, int) or isinstance(index, bool) or index < 0:
    raise ConfigError(f"TF_CONFIG task index must be an integer >= 0, got "
                      f"{index!r}.")
  # The evaluator runs beside the cluster and need not be listed in it.
  size = len(jobs.get(role, []))
  if (role != "evaluator" or size) and index >= size:
    listed = f"lists {size} '{role}' task(s)" if size else f"lists no '{role}'"
    raise ConfigError(f"TF_CONFIG task {role}:{index} is out of range: the "
                      f"cluster {listed}. Indices count from 0.")
  if role == "evaluator" and index != 0:
    raise ConfigError(f"TF_CONFIG evaluator index must be 0, got {index}: "
                      "Estimator runs a single evaluator.")
  cluster = Cluster({r: list(a) for r, a in jobs.items()}, role, index)
  if cluster.has_ps and not cluster.has_chief:
    raise ConfigError("TF_CONFIG lists 'ps' tasks but no 'chief': "
                      "parameter-server training needs one chief to "
                      f"initialise and checkpoint the model. Example: "
                      f"TF_CONFIG='{PS_EXAMPLE}'")
  return cluster


def exposure_warning(who: str, ports: list[int]) -> str:
  """The one warning that `who` (a task, a cluster) listens on every interface."""
  where = ", ".join(f"{GRPC_LISTEN_HOST}:{p}" for p in ports)
  return (f"{who} listens on {where}, not only on the host the cluster spec "
          "names (TensorFlow's gRPC server binds every interface and has no "
          "authentication): every host that can reach this machine can run "
          f"graphs there. Fence the port(s) (see {FENCING_DOC}).")


def warn_if_exposed(cluster: Cluster | None, mode: str) -> None:
  """Logs once which port this task's gRPC server opens to the network.

  ps_task.py starts a server in both train modes; Estimator's
  train_and_evaluate starts one for the chief and the workers of a cluster of
  more than one task; the evaluator and the other modes start none.
  """
  if cluster is None or cluster.own_port is None:
    return
  serves = (cluster.task_type == "ps" and mode in TRAIN_MODES) or (
      mode == "train_and_eval" and cluster.task_type in CHIEF_ROLES + ("worker",)
      and sum(len(hosts) for hosts in cluster.jobs.values()) > 1)
  if serves:
    logging.warning(exposure_warning(
        f"{cluster.task_type}:{cluster.task_index}", [cluster.own_port]))


def check(cfg: ExperimentConfig, cluster: Cluster | None, mode: str) -> None:
  """Checks that `distribute.strategy` fits the cluster and the mode.

  Raises:
    ConfigError: naming the strategy, what it needs and the fix.
  """
  name = cfg.distribute.strategy
  training_cluster = cluster is not None and cluster.num_workers > 0
  if name == "parameter_server" and not (cluster and cluster.has_ps):
    raise ConfigError(
        "distribute.strategy=parameter_server needs a TF_CONFIG cluster with "
        "'ps', 'chief' and 'worker' tasks (run python -m tools.launch_local_cluster "
        f"to try it on one machine). Example: TF_CONFIG='{PS_EXAMPLE}'")
  if name == "multi_worker_mirrored":
    if cluster and cluster.has_ps:
      raise ConfigError("distribute.strategy=multi_worker_mirrored all-reduces "
                        "between workers and takes no 'ps' tasks; remove them "
                        "from TF_CONFIG or use distribute.strategy="
                        "parameter_server.")
    if training_cluster and mode != "train_and_eval":
      raise ConfigError(f"distribute.strategy=multi_worker_mirrored on a "
                        f"TF_CONFIG cluster runs with --mode=train_and_eval "
                        f"only (Estimator's distribute coordinator), not "
                        f"--mode={mode}.")
  if name in SYNC_LOCAL and training_cluster:
    raise ConfigError(f"distribute.strategy={name} uses the devices of one "
                      "machine, but TF_CONFIG describes a cluster. Use "
                      "multi_worker_mirrored or parameter_server, or unset "
                      "TF_CONFIG.")
  if name == "default" and cluster and cluster.num_workers > 1 and \
      not cluster.has_ps:
    raise ConfigError("TF_CONFIG lists several training tasks but no 'ps': "
                      "with distribute.strategy=default each would train its "
                      "own copy of the model. Add 'ps' tasks (parameter-server "
                      "training) or set distribute.strategy="
                      f"multi_worker_mirrored. Example: TF_CONFIG='{MWMS_EXAMPLE}'")


def configure_devices(cfg: ExperimentConfig) -> None:
  """Splits the CPU into `distribute.num_cpu_devices` logical devices.

  This lets `mirrored` run its replicas on a CPU-only machine (tests, demos).
  It must happen before TensorFlow initialises its devices, so engine.modes calls
  it before building anything.

  Raises:
    ConfigError: TensorFlow was initialised already with another split.
  """
  import tensorflow as tf
  n = cfg.distribute.num_cpu_devices
  if n <= 1:
    return
  cpu = tf.config.list_physical_devices("CPU")[0]
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * n)
  except RuntimeError:
    have = len(tf.config.list_logical_devices("CPU"))
    if have != n:
      raise ConfigError(
          f"distribute.num_cpu_devices={n}, but TensorFlow already started "
          f"with {have} CPU device(s) in this process; the split must be set "
          "before the first TensorFlow operation (start a new process).") from None


def local_devices(cfg: ExperimentConfig) -> list[str]:
  """The replica devices of `mirrored` / `central_storage` on this machine."""
  import tensorflow as tf
  gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
  if gpus:
    n = cfg.distribute.num_gpus
    if n > len(gpus):
      raise ConfigError(f"distribute.num_gpus={n}, but this machine has "
                        f"{len(gpus)} GPU(s). Use -1 for all of them.")
    return gpus[:n] if n >= 0 else gpus
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
  return cpus[:max(1, cfg.distribute.num_cpu_devices)]


def make_strategies(cfg: ExperimentConfig, cluster: Cluster | None):
  """(train_distribute, eval_distribute) for RunConfig; None is Estimator's own.

  Evaluation runs on one device under the local strategies: an Estimator eval
  split across replicas drops a last batch that does not fill every replica,
  and CIFAR's test set must be counted exactly once.
  """
  import tensorflow as tf
  name = cfg.distribute.strategy
  if name in ("default", "parameter_server"):
    return None, None
  if name == "mirrored":
    strategy = tf.compat.v1.distribute.MirroredStrategy(local_devices(cfg))
  elif name == "central_storage":
    strategy = tf.compat.v1.distribute.experimental.CentralStorageStrategy(
        compute_devices=local_devices(cfg), parameter_device="/cpu:0")
  elif name == "multi_worker_mirrored":
    if cluster is not None and cluster.task_type == "evaluator":
      # The evaluator takes no part in the all-reduce (the strategy would
      # reject its role); Estimator's plain evaluator loop serves it.
      return None, None
    # Ring all-reduce works everywhere; NCCL is chosen per GPU by AUTO.
    strategy = tf.compat.v1.distribute.experimental.MultiWorkerMirroredStrategy(
        communication=tf.distribute.experimental.CollectiveCommunication.AUTO)
  else:
    raise ConfigError(f"unknown distribute.strategy {name}")
  replicas = strategy.num_replicas_in_sync
  if cfg.train.batch_size % replicas:
    raise ConfigError(
        f"train.batch_size={cfg.train.batch_size} is the global batch and "
        f"must split evenly over the {replicas} replicas of "
        f"distribute.strategy={name}; use a multiple of {replicas}, e.g. "
        f"--params_override=train.batch_size="
        f"{replicas * max(1, cfg.train.batch_size // replicas)}.")
  return strategy, None


def adjust_session_config(cfg: ExperimentConfig, proto, cluster: Cluster | None):
  """Adds what the strategy or the cluster needs to the session ConfigProto.

  Two settings that Estimator would only make itself when no session config
  is given: a session on logical CPU devices must be told how many exist
  (without `device_count` an Estimator under MirroredStrategy waited forever
  for /cpu:1), and in parameter-server training each task must only talk to
  the ps tasks and itself (device filters), or a worker blocks on peers that
  already left.
  """
  n = cfg.distribute.num_cpu_devices
  if n > 1 and cfg.distribute.strategy in SYNC_LOCAL:
    proto.device_count["CPU"] = n
  if cluster is not None and cluster.has_ps:
    filters = {"chief": ["/job:ps", "/job:chief"],
               "master": ["/job:ps", "/job:master"],
               "worker": ["/job:ps", f"/job:worker/task:{cluster.task_index}"],
               "ps": ["/job:ps", "/job:worker", "/job:chief", "/job:master"]}
    if cluster.task_type in filters:
      del proto.device_filters[:]
      proto.device_filters.extend(filters[cluster.task_type])
  return proto


def shard_for_worker(input_fn, cluster: Cluster | None):
  """Gives each parameter-server worker its own shard of the training data.

  Estimator passes an InputContext only under a strategy; between-graph
  workers would otherwise read identical (same-seed) batches. The context
  keeps each worker's batch at `train.batch_size` (one replica per worker).
  """
  if cluster is None or not cluster.has_ps or cluster.num_workers <= 1 or \
      cluster.task_type not in CHIEF_ROLES + ("worker",):
    return input_fn
  import tensorflow as tf
  context = tf.distribute.InputContext(num_input_pipelines=cluster.num_workers,
                                       input_pipeline_id=cluster.worker_index,
                                       num_replicas_in_sync=1)

  def sharded_input_fn(params=None):
    return input_fn(params=params, input_context=context)

  return sharded_input_fn
