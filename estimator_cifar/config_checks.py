"""Every check of a resolved config: ranges, limits, choices, combinations.

`validate` is the one place a config is checked, after the overrides and
before anything is built or written, so a bad value is one `error:` instead of
a run that trains nonsense or ends in a traceback. The checks are data where
they can be:

  - every float anywhere in the config must be finite (no NaN, no inf);
  - RANGES: each numeric field's allowed interval (list and dict fields: each
    element), so a new field gets its check from one table row;
  - LIMITS: sanity limits on network size and batch memory, each raised
    deliberately with its environment variable;
  - APPLIES: the optimizer and schedule fields each kind reads; a field set
    away from its default that the chosen kind ignores is refused.

No TensorFlow here, so a typo fails before any graph is built.
"""

import dataclasses
import math
import os
import re
from typing import Any, NamedTuple

from estimator_cifar import config as config_lib
from estimator_cifar import export_checks, loop_support
from estimator_cifar import overrides as overrides_lib
from estimator_cifar.data import cifar
from estimator_cifar.model import nets
from estimator_cifar.errors import ConfigError

INF = math.inf


class Range(NamedTuple):
  """An interval of allowed values; `*_open` leaves that end out."""
  low: float = -INF
  high: float = INF
  low_open: bool = False
  high_open: bool = False

  def holds(self, value: float) -> bool:
    above = value > self.low if self.low_open else value >= self.low
    below = value < self.high if self.high_open else value <= self.high
    return above and below

  def describe(self) -> str:
    if self.high == INF:
      return "positive" if (self.low, self.low_open) == (0, True) else \
          f"{'>' if self.low_open else '>='} {self.low:g}"
    if self.low == -INF:
      return f"{'<' if self.high_open else '<='} {self.high:g}"
    return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
            f"{')' if self.high_open else ']'}")


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1)             # [0, 1]
PROPER_FRACTION = Range(0, 1, high_open=True)  # [0, 1)
# The image side (the default crop is the whole image); pad and cutout fit in it.
SIDE = config_lib.DataConfig.image_size

# Each numeric field's allowed values. A field of the config that holds
# numbers and is missing here fails tests/test_config_checks.py.
RANGES: dict[str, Range] = {
    "model.depth": POSITIVE, "model.version": Range(1, 2),
    "model.width": POSITIVE, "model.dropout": PROPER_FRACTION,
    "model.bn_momentum": FRACTION, "model.bn_epsilon": POSITIVE,
    "data.shuffle_buffer": POSITIVE, "data.image_size": Range(0, SIDE, low_open=True),
    "data.pad": Range(0, SIDE), "data.brightness_delta": FRACTION,
    "data.contrast_lower": NON_NEGATIVE, "data.contrast_upper": NON_NEGATIVE,
    "data.cutout_size": Range(0, SIDE), "data.validation_size": NON_NEGATIVE,
    # Synthetic images are made in memory: 500k is 10x CIFAR's training set.
    "data.synthetic_train_size": Range(0, 500_000, low_open=True),
    "data.synthetic_eval_size": Range(0, 500_000, low_open=True),
    "train.batch_size": POSITIVE, "train.epochs": NON_NEGATIVE,
    "train.steps": NON_NEGATIVE, "train.weight_decay": NON_NEGATIVE,
    "train.label_smoothing": PROPER_FRACTION, "train.mixup_alpha": NON_NEGATIVE,
    "train.clip_global_norm": NON_NEGATIVE, "train.clip_value": NON_NEGATIVE,
    "train.gradient_multipliers": NON_NEGATIVE,
    "train.seed": Range(0, 2**31 - 1),
    # Each loop holds its K batches in memory at once.
    "train.steps_per_loop": Range(0, 1000, low_open=True),
    "optimizer.learning_rate": POSITIVE, "optimizer.momentum": FRACTION,
    "optimizer.beta1": PROPER_FRACTION, "optimizer.beta2": PROPER_FRACTION,
    "optimizer.epsilon": POSITIVE, "optimizer.rho": PROPER_FRACTION,
    "optimizer.decay": PROPER_FRACTION, "optimizer.initial_accumulator": POSITIVE,
    "optimizer.l1": NON_NEGATIVE, "optimizer.l2": NON_NEGATIVE,
    "optimizer.learning_rate_power": Range(high=0),  # FTRL's rule needs <= 0.
    "optimizer.weight_decay": NON_NEGATIVE,
    "schedule.warmup_epochs": NON_NEGATIVE, "schedule.decay_rate": POSITIVE,
    "schedule.decay_epochs": POSITIVE, "schedule.end_learning_rate": NON_NEGATIVE,
    "schedule.horizon_epochs": NON_NEGATIVE, "schedule.power": NON_NEGATIVE,
    "schedule.boundaries_epochs": NON_NEGATIVE, "schedule.values": POSITIVE,
    "schedule.multipliers": POSITIVE,
    "ema.decay": PROPER_FRACTION,
    "checkpoint.save_steps": NON_NEGATIVE, "checkpoint.save_secs": POSITIVE,
    "checkpoint.keep_max": POSITIVE, "checkpoint.keep_every_n_hours": POSITIVE,
    "summary.save_steps": POSITIVE, "summary.histogram_steps": NON_NEGATIVE,
    "summary.max_images": POSITIVE,
    "log.every_steps": POSITIVE,
    "eval.batch_size": POSITIVE, "eval.throttle_secs": NON_NEGATIVE,
    "eval.start_delay_secs": NON_NEGATIVE, "eval.timeout_secs": NON_NEGATIVE,
    "eval.export_latest": NON_NEGATIVE,
    # Thread pools and logical devices are made up front, one per unit.
    "distribute.num_gpus": Range(-1), "distribute.num_cpu_devices": Range(0, 256),
    "distribute.max_worker_delay_secs": NON_NEGATIVE,
    "session.intra_op_threads": Range(0, 1024),
    "session.inter_op_threads": Range(0, 1024),
    "session.gpu_memory_fraction": FRACTION,
}


class Limit(NamedTuple):
  """A sanity limit that a user raises on purpose through `env`."""
  what: str
  env: str
  default: float

  def value(self) -> float:
    text = os.environ.get(self.env, "").strip()
    try:
      return float(text) if text else self.default
    except ValueError:
      raise ConfigError(f"${self.env}={text!r} is not a number; set it to the "
                        f"largest {self.what} to allow (default "
                        f"{self.default:g}) or unset it.") from None


# He et al. trained the deepest CIFAR ResNets, 1001 and 1202 layers.
MAX_DEPTH = Limit("network depth", "ESTIMATOR_CIFAR_MAX_DEPTH", 1202)
# WRN-28-10 has 36.5M parameters; 200M float32 weights are 0.8 GB before slots.
MAX_PARAMS = Limit("parameter count estimate", "ESTIMATOR_CIFAR_MAX_PARAMS",
                   200e6)
MAX_BATCH_GIB = Limit("batch memory estimate in GiB",
                      "ESTIMATOR_CIFAR_MAX_BATCH_GIB", 32)
# Activations per float32 input byte: a ResNet-20 keeps about 2.4 MB per
# 32x32 image for the backward pass (200x); evaluation holds about two layer
# outputs of 16 channels at a time (11x). Both grow with the width factor.
ACTIVATIONS_PER_INPUT_BYTE = {"train.batch_size": 200, "eval.batch_size": 11}
FLOAT_BYTES = 4

# The fields of optimizer.* and schedule.* that each kind reads (besides name,
# learning_rate and scale_lr_with_batch, and warmup_epochs): model/optim.py.
APPLIES = {
    "optimizer": {
        "sgd": (), "momentum": ("momentum",), "nesterov": ("momentum",),
        "adam": ("beta1", "beta2", "epsilon"),
        "adamw": ("beta1", "beta2", "epsilon", "weight_decay"),
        "adagrad": ("initial_accumulator",), "adadelta": ("rho", "epsilon"),
        "rmsprop": ("decay", "momentum", "epsilon"),
        "ftrl": ("initial_accumulator", "learning_rate_power", "l1", "l2")},
    "schedule": {
        "constant": (), "exponential": ("decay_rate", "decay_epochs", "staircase"),
        "polynomial": ("end_learning_rate", "horizon_epochs", "power", "cycle"),
        "piecewise": ("boundaries_epochs", "values", "multipliers"),
        "cosine": ("end_learning_rate", "horizon_epochs")},
}
APPLY_TO_ALL = {"optimizer": ("name", "learning_rate", "scale_lr_with_batch"),
                "schedule": ("name", "warmup_epochs")}

CHOICES = {
    "data.name": config_lib.DATA_NAMES,
    "data.source": config_lib.DATA_SOURCES, "data.label": config_lib.LABEL_KINDS,
    "data.pipeline": config_lib.PIPELINES,
    "data.in_memory": ("auto", "true", "false"),
    "data.trivial_augment_ranges": config_lib.TRIVIAL_AUGMENT_RANGES,
    "optimizer.name": config_lib.OPTIMIZER_NAMES,
    "schedule.name": config_lib.SCHEDULE_NAMES,
    "train.precision": config_lib.PRECISIONS + (config_lib.PRECISION_AUTO,),
    "train.weight_decay_on": config_lib.WEIGHT_DECAY_ON,
    "distribute.strategy": config_lib.STRATEGIES, "eval.tta": config_lib.EVAL_TTA,
    "eval.export_best": config_lib.EXPORT_BEST,
    "eval.calibration": config_lib.CALIBRATIONS,
    "export.tflite_quantize": export_checks.TFLITE_QUANTIZE}


def choices(key: str) -> tuple[str, ...] | None:
  """The values field `key` allows, or None where any value of its type goes."""
  if key == "model.name":
    return nets.names()  # The built-ins and any network registered since.
  return CHOICES.get(key)


def validate(cfg: config_lib.ExperimentConfig) -> config_lib.ExperimentConfig:
  """Checks values, limits, choices and combinations; returns `cfg`.

  Raises:
    ConfigError: the first problem, naming the field, what is allowed and the
      fix.
  """
  _check_choices(cfg)
  _check_finite(cfg)
  _check_ranges(cfg)
  _check_limits(cfg)
  _check_applies(cfg, "optimizer")
  _check_applies(cfg, "schedule")
  _check_combinations(cfg)
  loop_support.check(cfg)
  export_checks.check(cfg.export)
  _check_patterns(cfg)
  return cfg


def _check_choices(cfg) -> None:
  for key in ("model.name", *CHOICES):
    if config_lib.get(cfg, key) not in choices(key):
      raise ConfigError(overrides_lib.not_a_choice(
          key, config_lib.get(cfg, key), choices(key), "the experiment"))
  for aug in cfg.data.augment:
    if aug not in config_lib.AUGMENTATIONS:
      raise ConfigError(f"data.augment has unknown '{aug}'; choose from: "
                        f"{', '.join(config_lib.AUGMENTATIONS)}.")


def numbers(value: Any) -> list:
  """The numbers a field holds: itself, or a list's items, or a dict's values."""
  items = value.values() if isinstance(value, dict) else \
      value if isinstance(value, list) else [value]
  return [v for v in items
          if isinstance(v, (int, float)) and not isinstance(v, bool)]


def numeric_keys(cfg) -> list[str]:
  """Every `section.field` of `cfg` that holds numbers (now, or as a list)."""
  keys = []
  for section in dataclasses.fields(cfg):
    if not dataclasses.is_dataclass(getattr(cfg, section.name)):
      continue
    for f in dataclasses.fields(getattr(cfg, section.name)):
      key = f"{section.name}.{f.name}"
      if numbers(config_lib.get(cfg, key)) or key in RANGES:
        keys.append(key)
  return keys


def _check_finite(cfg) -> None:
  for key in numeric_keys(cfg):
    for v in numbers(config_lib.get(cfg, key)):
      if not math.isfinite(v):
        raise ConfigError(f"{key}={v} is not a finite number. Fix the "
                          f"experiment or pass --params_override={key}=<a "
                          "number>.")


def _check_ranges(cfg) -> None:
  for key, allowed in RANGES.items():
    for v in numbers(config_lib.get(cfg, key)):
      if not allowed.holds(v):
        raise ConfigError(f"{key}={v} must be {allowed.describe()}. Fix the "
                          f"experiment, or pass --params_override={key}=... "
                          f"with a value that is {allowed.describe()}.")


def _over(limit: Limit, value: float, setting: str) -> ConfigError:
  return ConfigError(
      f"{setting} means a {limit.what} of {value:,.0f}, over the sanity limit "
      f"of {limit.value():,.0f}: building or feeding it would take minutes and "
      "more memory than most machines have. Use a smaller value, or if you "
      f"mean it, raise the limit: {limit.env}={math.ceil(value)}.")


def estimated_params(model) -> int:
  """About how many weights a ResNet or Wide-ResNet has (0 for other nets).

  Three stages of n blocks, two 3x3 convs each, 16k/32k/64k channels:
  2 n 9 (16k)^2 (1 + 4 + 16) weights; ResNet-110 1.74M (1.7M), WRN-28-10
  38.7M (36.5M).
  """
  if model.name == "resnet":
    blocks, width = (model.depth - 2) // 6, 1
  elif model.name == "wide_resnet":
    blocks, width = (model.depth - 4) // 6, model.width
  else:
    return 0
  return 2 * blocks * 9 * (16 * width) ** 2 * 21


def estimated_batch_gib(cfg, key: str) -> float:
  """Memory of one batch of `key`: its float32 pixels and their activations."""
  side = cfg.data.image_size + 2 * cfg.data.pad
  image_bytes = side * side * 3 * FLOAT_BYTES
  width = cfg.model.width if cfg.model.name == "wide_resnet" else 1
  return (config_lib.get(cfg, key) * image_bytes * width *
          ACTIVATIONS_PER_INPUT_BYTE[key] / 2**30)


def _check_limits(cfg) -> None:
  model = cfg.model
  if model.name in ("resnet", "wide_resnet") and model.depth > MAX_DEPTH.value():
    raise _over(MAX_DEPTH, model.depth, f"model.depth={model.depth}")
  params = estimated_params(model)
  if params > MAX_PARAMS.value():
    raise _over(MAX_PARAMS, params, f"model.depth={model.depth} with "
                f"model.width={model.width}")
  for key in ACTIVATIONS_PER_INPUT_BYTE:
    gib = estimated_batch_gib(cfg, key)
    if gib > MAX_BATCH_GIB.value():
      raise _over(MAX_BATCH_GIB, gib, f"{key}={config_lib.get(cfg, key)}")


def _check_applies(cfg, section: str) -> None:
  """Refuses a field set away from its default that the chosen kind ignores."""
  values = getattr(cfg, section)
  defaults = type(values)()
  applies = APPLY_TO_ALL[section] + APPLIES[section][values.name]
  ignored = [f.name for f in dataclasses.fields(values) if f.name not in applies
             and getattr(values, f.name) != getattr(defaults, f.name)]
  if ignored:
    raise ConfigError(
        f"{section}.name={values.name} ignores "
        f"{', '.join(f'{section}.{n}={getattr(values, n)}' for n in ignored)}. "
        f"The {section} fields that apply to {values.name} are: "
        f"{', '.join(f'{section}.{n}' for n in applies)}. Remove the others "
        "from the experiment or reset them to their defaults: "
        "--params_override=" + ",".join(
            f"{section}.{n}={_text(getattr(defaults, n))}" for n in ignored) + ".")


def _text(value: Any) -> str:
  """A default as --params_override writes it."""
  if isinstance(value, bool):
    return str(value).lower()
  return "[]" if value == [] else str(value)


def _check_combinations(cfg) -> None:
  if cfg.train.steps <= 0 and cfg.train.epochs <= 0:
    raise ConfigError("Set train.steps > 0 or train.epochs > 0 to say how long "
                      "to train.")
  if cfg.train.weight_decay > 0 and cfg.optimizer.weight_decay > 0:
    raise ConfigError(
        f"train.weight_decay={cfg.train.weight_decay} and optimizer."
        f"weight_decay={cfg.optimizer.weight_decay} are both set: the same "
        "weights would decay twice (an L2 term in the loss and AdamW's "
        "decoupled decay). Keep one: --params_override=train.weight_decay=0 "
        "for AdamW's decay, or optimizer.weight_decay=0 for the L2 term.")
  depth, name = cfg.model.depth, cfg.model.name
  if name == "resnet" and (depth < 8 or (depth - 2) % 6):
    raise ConfigError(f"model.depth={depth} is not a CIFAR ResNet depth 6n+2 "
                      "(8, 14, 20, 32, 44, 56, 110, ...).")
  if name == "wide_resnet" and (depth < 10 or (depth - 4) % 6):
    raise ConfigError(f"model.depth={depth} is not a wide-ResNet depth 6n+4 "
                      "(10, 16, 22, 28, 40, ...).")
  if cfg.eval.calibration != "none" and cfg.data.validation_size <= 0:
    raise ConfigError(
        f"eval.calibration={cfg.eval.calibration} is fitted on a validation "
        "split, and this run has none (data.validation_size=0); it is never "
        "fitted on the test split. Hold some training images out: "
        "--params_override=data.validation_size=5000 (CIFAR's 50,000; 500 of "
        "a few thousand).")
  if cfg.ema.eval_with_ema and cfg.ema.decay == 0:
    raise ConfigError("ema.eval_with_ema=true needs ema.decay > 0.")
  if cfg.data.contrast_upper < cfg.data.contrast_lower:
    raise ConfigError(f"data.contrast_upper={cfg.data.contrast_upper} is below "
                      f"data.contrast_lower={cfg.data.contrast_lower}; the "
                      "contrast factor is drawn between them, lower first.")
  spec = cifar.DATASETS[cfg.data.name]
  if cfg.data.image_size > spec.side:
    raise ConfigError(f"data.image_size={cfg.data.image_size} must be in "
                      f"1..{spec.side}, the side of {spec.name}'s images.")
  if cfg.data.source == "tfds" and not spec.tfds_name:
    raise ConfigError(f"data.source=tfds cannot serve data.name={spec.name}; "
                      "use data.source=binary.")
  sched = cfg.schedule
  if cfg.optimizer.name == "ftrl" and sched.warmup_epochs > 0:
    raise ConfigError(
        "optimizer.name=ftrl cannot warm up from 0: FTRL computes the weights "
        "from its accumulators times the current rate, so a rate of 0 at step "
        "0 sets every weight to 0. Set schedule.warmup_epochs=0.")
  n, strategy = cfg.distribute.num_cpu_devices, cfg.distribute.strategy
  if n > 1 and strategy not in config_lib.SYNC_LOCAL_STRATEGIES:
    raise ConfigError(f"distribute.num_cpu_devices={n} only serves "
                      "distribute.strategy=mirrored or central_storage, not "
                      f"{strategy}.")
  if sched.name == "piecewise":
    given = sched.values or sched.multipliers
    if len(given) != len(sched.boundaries_epochs) + 1:
      raise ConfigError(
          "schedule.name=piecewise needs one more value than boundaries: got "
          f"{len(sched.boundaries_epochs)} boundaries_epochs and {len(given)} "
          "values/multipliers.")
    if sorted(sched.boundaries_epochs) != list(sched.boundaries_epochs):
      raise ConfigError("schedule.boundaries_epochs must be increasing.")


def _check_patterns(cfg) -> None:
  for pattern in (list(cfg.train.gradient_multipliers) +
                  cfg.train.trainable_scopes):
    try:
      re.compile(pattern)
    except re.error as e:
      raise ConfigError(f"'{pattern}' in train.gradient_multipliers or "
                        f"train.trainable_scopes is not a regular expression "
                        f"({e}). Write a variable-name prefix such as "
                        "resnet/logits.") from None
