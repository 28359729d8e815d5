"""`train.precision=auto`: the fastest precision this device runs well.

Decided from what the device has, not from what a precision is called:
- a GPU with tensor cores (compute capability >= 7.0): mixed_float16;
- else a CPU with AMX (`amx_bf16` in /proc/cpuinfo's flags): mixed_bfloat16,
  which AMX's bfloat16 matrix units make faster than float32;
- else float32. A CPU with avx512_bf16 but no AMX has bfloat16 instructions,
  yet mixed_bfloat16 measured slower than float32 there (docs/real_data.md),
  and older GPUs have no fast float16 path.
The choice and its reason are logged once per process. Any other value of
`train.precision` is used as given.
"""

import dataclasses

from absl import logging

from estimator_cifar.config import PRECISION_AUTO, ExperimentConfig

CPUINFO = "/proc/cpuinfo"
TENSOR_CORE_CAPABILITY = (7, 0)  # Volta and newer.

_logged: set = set()


def cpu_flags(cpuinfo: str = CPUINFO) -> set[str]:
  """The CPU feature flags from /proc/cpuinfo (empty where there is none)."""
  try:
    with open(cpuinfo) as f:
      for line in f:
        if line.startswith("flags"):
          return set(line.partition(":")[2].split())
  except OSError:
    pass
  return set()


def gpu_capabilities() -> list[tuple[int, int]]:
  """Compute capabilities (major, minor) of the visible GPUs."""
  import tensorflow as tf
  found = []
  for gpu in tf.config.list_physical_devices("GPU"):
    details = tf.config.experimental.get_device_details(gpu)
    found.append(tuple(details.get("compute_capability", (0, 0))))
  return found


def choose(capabilities: list[tuple[int, int]],
           flags: set[str]) -> tuple[str, str]:
  """(precision, reason) for a device with these GPUs and CPU flags."""
  if capabilities:
    best = max(capabilities)
    if best >= TENSOR_CORE_CAPABILITY:
      return "mixed_float16", (f"GPU with tensor cores (compute capability "
                               f"{best[0]}.{best[1]})")
    return "float32", (f"GPU without tensor cores (compute capability "
                       f"{best[0]}.{best[1]} < 7.0)")
  if "amx_bf16" in flags:
    return "mixed_bfloat16", "CPU with AMX bfloat16 units (amx_bf16)"
  if "avx512_bf16" in flags:
    return "float32", ("CPU with avx512_bf16 but no AMX: mixed_bfloat16 runs "
                       "slower than float32 there")
  return "float32", "CPU without bfloat16 matrix units"


def resolve(cfg: ExperimentConfig) -> ExperimentConfig:
  """`cfg` itself, or for precision=auto a copy with the chosen precision."""
  if cfg.train.precision != PRECISION_AUTO:
    return cfg
  chosen, reason = choose(gpu_capabilities(), cpu_flags())
  if (chosen, reason) not in _logged:
    _logged.add((chosen, reason))
    logging.info("train.precision=auto -> %s: %s.", chosen, reason)
  return dataclasses.replace(
      cfg, train=dataclasses.replace(cfg.train, precision=chosen))
