"""`train.precision=auto`: the precision that trains this network fastest here.

- A GPU keeps the tensor-core rule: mixed_float16 with compute capability
  >= 7.0, else float32.
- A CPU without bfloat16 instructions (`avx512_bf16` or `amx_bf16` in
  /proc/cpuinfo's flags) trains in float32.
- Any other CPU is measured: the flags say which instructions exist, not
  which kernels oneDNN runs fast on a given core (mixed_bfloat16 is slower
  than float32 on some CPUs with avx512_bf16, faster on others:
  docs/performance.md#precision). precision_probe.py times a few steps of the experiment's own
  network in float32 and mixed_bfloat16, alternating, and mixed_bfloat16 is
  kept only at CLEAR_MARGIN or better. A precision that fails in the probe
  (an op without a bfloat16 kernel) leaves float32, and the log says why.

A measured decision is stored per machine, TensorFlow version, network and
batch size (precision_cache.py), so only the first run on a machine pays the
few seconds. The decision and its reason are logged once per process and
recorded in run_info.json (`precision`). Any other value of `train.precision`
is used as given, without a probe.
"""

import dataclasses
from typing import Any

from absl import logging

from estimator_cifar.config import PRECISION_AUTO, PRECISIONS, ExperimentConfig
from estimator_cifar.data import cifar
from estimator_cifar.engine import precision_cache

CPUINFO = "/proc/cpuinfo"
TENSOR_CORE_CAPABILITY = (7, 0)  # Volta and newer.
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")  # CPUs worth a bfloat16 probe.
CANDIDATES = ("float32", "mixed_bfloat16")  # Measured on such a CPU.
# mixed_bfloat16 must beat float32's steps/s by this factor: below it a
# neighbour's load or the probe's few steps could have made the difference.
CLEAR_MARGIN = 1.15


@dataclasses.dataclass(frozen=True)
class Decision:
  """What auto chose, why, and mixed_bfloat16's measured speed-up (if any)."""
  precision: str
  reason: str
  ratio: float | None = None  # mixed_bfloat16's steps/s over float32's.

  def as_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


_decided: dict[str, Decision] = {}  # This process's decisions, by cache key.


def cpu_info(cpuinfo: str = CPUINFO) -> tuple[str, set[str]]:
  """(model name, feature flags) from /proc/cpuinfo ("", empty where none)."""
  model, flags = "", set()
  try:
    with open(cpuinfo) as f:
      for line in f:
        name, _, value = line.partition(":")
        if name.strip() == "model name" and not model:
          model = value.strip()
        elif name.strip() == "flags" and not flags:
          flags = set(value.split())
  except OSError:
    pass
  return model, flags


def gpu_capabilities() -> list[tuple[int, int]]:
  """Compute capabilities (major, minor) of the visible GPUs."""
  import tensorflow as tf
  found = []
  for gpu in tf.config.list_physical_devices("GPU"):
    details = tf.config.experimental.get_device_details(gpu)
    found.append(tuple(details.get("compute_capability", (0, 0))))
  return found


def device_rule(capabilities: list[tuple[int, int]],
                flags: set[str]) -> Decision | None:
  """The decision the device alone settles, or None where it takes a probe."""
  if capabilities:
    best = max(capabilities)
    if best >= TENSOR_CORE_CAPABILITY:
      return Decision("mixed_float16", f"GPU with tensor cores (compute "
                      f"capability {best[0]}.{best[1]})")
    return Decision("float32", f"GPU without tensor cores (compute "
                    f"capability {best[0]}.{best[1]} < 7.0)")
  if not flags & set(BFLOAT16_FLAGS):
    return Decision("float32", "CPU without bfloat16 instructions")
  return None


def decide(steps_per_sec: dict[str, float], failures: dict[str, str],
           trials: int, steps: int, network: str, batch_size: int) -> Decision:
  """The decision from a probe's median steps/s per precision.

  Args:
    steps_per_sec: median steps/s of each precision that ran (float32's
      always).
    failures: the error line of each candidate that failed in the probe.
    trials: alternating trials per precision behind each median.
    steps: timed steps per trial.
    network: the network's name, for the reason.
    batch_size: the batch size timed, for the reason.
  """
  fast = CANDIDATES[1]
  if fast in failures:
    return Decision("float32", f"{fast} failed in the probe, so float32 "
                    f"({failures[fast]})")
  ratio = round(steps_per_sec[fast] / steps_per_sec["float32"], 3)
  how = (f"measured {ratio:.2f}x float32's steps/s (median of {trials} "
         f"alternating trials of {steps} steps, {network}, batch {batch_size})")
  if ratio >= CLEAR_MARGIN:
    return Decision(fast, how, ratio)
  return Decision("float32", f"{fast} {how}, under the {CLEAR_MARGIN}x "
                  "margin it must clear", ratio)


def network_name(cfg: ExperimentConfig) -> str:
  """e.g. resnet-20, wide_resnet-28x10, convnet-20 at 24x24: what the probe
  timed (the input side only where it is not the dataset's whole image)."""
  m, side = cfg.model, cfg.data.image_size
  crop = f" at {side}x{side}" if side != cifar.DATASETS[cfg.data.name].side else ""
  return f"{m.name}-{m.depth}" + (f"x{m.width}" if m.width != 1 else "") + crop


def decision(cfg: ExperimentConfig) -> Decision:
  """Auto's decision for `cfg` on this device: by rule, cached, or measured."""
  key, flags, capabilities, memo = _identity(cfg)
  if memo in _decided:
    return _decided[memo]
  chosen, where = device_rule(capabilities, flags), ""
  if chosen is None:
    cached = _cached_decision(key)
    if cached is not None:
      chosen, where = cached, f" (cached in {precision_cache.path()})"
    else:
      chosen = _measure(cfg)
      if precision_cache.store(key, chosen.as_dict()):
        where = f"; cached in {precision_cache.path()}"
  _decided[memo] = chosen
  logging.info("train.precision=auto -> %s: %s%s.", chosen.precision,
               chosen.reason, where)
  return chosen


def _identity(cfg: ExperimentConfig) -> tuple[dict[str, Any], set[str],
                                            list[tuple[int, int]], str]:
  """(cache key, CPU flags, GPU capabilities, this process's memo key)."""
  import tensorflow as tf
  cpu_model, flags = cpu_info()
  capabilities = gpu_capabilities()
  key = precision_cache.key(cpu_model, flags, tf.__version__,
                            network_name(cfg), cfg.train.batch_size)
  return key, flags, capabilities, repr((key, capabilities))


def _cached_decision(key: dict[str, Any]) -> Decision | None:
  """The stored decision for `key`, or None (one log line if malformed)."""
  stored = precision_cache.lookup(key)
  if stored is None:
    return None
  try:
    chosen = Decision(**stored)
  except TypeError:
    chosen = None
  if chosen is None or chosen.precision not in PRECISIONS:
    logging.info("Ignoring a malformed entry in the precision cache %s: "
                 "measuring again.", precision_cache.path())
    return None
  return chosen


def _measure(cfg: ExperimentConfig) -> Decision:
  """Runs the probe on `cfg`'s network and decides from it."""
  from estimator_cifar.engine import precision_probe
  logging.info("train.precision=auto: timing %s in %s (once per machine "
               "and network).", network_name(cfg), " and ".join(CANDIDATES))
  result = precision_probe.probe(cfg, list(CANDIDATES))
  return decide(result.steps_per_sec, result.failures, result.trials,
                result.steps, network_name(cfg), cfg.train.batch_size)


def with_precision(cfg: ExperimentConfig, name: str) -> ExperimentConfig:
  """A copy of `cfg` that trains in precision `name`."""
  return dataclasses.replace(
      cfg, train=dataclasses.replace(cfg.train, precision=name))


def resolve(cfg: ExperimentConfig) -> ExperimentConfig:
  """`cfg` itself, or for precision=auto a copy with the chosen precision."""
  if cfg.train.precision != PRECISION_AUTO:
    return cfg
  return with_precision(cfg, decision(cfg).precision)


def run_fact(cfg: ExperimentConfig) -> dict[str, Any] | None:
  """run_info.json's `precision`: the decision auto made for `cfg` in this
  process, or None for a set value or where none was made (a run that ended
  before its Estimator was built: nothing is measured for the record)."""
  if cfg.train.precision != PRECISION_AUTO:
    return None
  chosen = _decided.get(_identity(cfg)[-1])
  return chosen.as_dict() if chosen else None
