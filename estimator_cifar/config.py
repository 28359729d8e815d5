"""The typed experiment config: sections, experiment loading, checks.

An experiment is data: `experiments/<name>.py` defines `get_config()` that
returns a fresh `ExperimentConfig`. The order is fixed: experiment defaults,
then command-line overrides (`a.b=v`, overrides.py), then `validate` (every
check that needs no TensorFlow), then the final config is written to
`<model_dir>/config.json`. No TensorFlow here, so a typo fails before any
graph is built.
"""

import dataclasses
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from estimator_cifar import experiment_files, export_checks, loop_support, paths
from estimator_cifar.errors import ConfigError
# The override parser, re-exported: callers resolve configs through this module.
from estimator_cifar.overrides import (all_keys, apply_overrides,  # noqa: F401
                                       parse_value, set_from_dict,
                                       split_overrides)

# Here, not in the TF modules, so validation needs no TensorFlow.
MODEL_NAMES = ("resnet", "wide_resnet", "convnet", "tiny", "airbench")
DATA_NAMES = ("cifar10", "cifar100", "synthetic")
DATA_SOURCES = ("binary", "tfds")
LABEL_KINDS = ("fine", "coarse")
PIPELINES = ("batch", "per_image")
AUGMENTATIONS = ("pad_crop", "random_crop", "flip", "trivial_augment",
                 "brightness", "contrast", "standardize", "cutout")
TRIVIAL_AUGMENT_RANGES = ("wide", "standard")  # data/trivial_augment.py's RANGES.
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adam", "adamw", "adagrad",
                   "adadelta", "rmsprop", "ftrl")
SCHEDULE_NAMES = ("constant", "exponential", "polynomial", "piecewise", "cosine")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
PRECISION_AUTO = "auto"  # Picks one of PRECISIONS from the device (engine/precision.py).
EVAL_TTA = ("none", "flip", "flip_translate")  # Test-time augmentation (model/tta.py).
WEIGHT_DECAY_ON = ("kernels", "all", "dense_kernels")
STRATEGIES = ("default", "mirrored", "central_storage", "multi_worker_mirrored",
              "parameter_server")
SYNC_LOCAL_STRATEGIES = ("mirrored", "central_storage")  # One machine's devices.


@dataclass
class ModelConfig:
  name: str = "resnet"
  depth: int = 20            # ResNet: 6n+2; wide ResNet: 6n+4.
  version: int = 1           # ResNet 1 (He et al. 2016a) or 2 (pre-activation).
  width: int = 1             # Wide-ResNet widening factor k.
  dropout: float = 0.0       # Wide-ResNet dropout between the two convs.
  # PyTorch's default, as in most CIFAR ResNet reproductions: at lr 0.1 the
  # weights outrun a slower average (docs/results.md).
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5


@dataclass
class DataConfig:
  name: str = "cifar10"
  source: str = "binary"     # binary files under data_dir, or tensorflow-datasets.
  label: str = "fine"        # CIFAR-100 only: fine (100) or coarse (20) labels.
  tfds_dir: str = ""
  shuffle_buffer: int = 50000  # <= 1: no shuffle; pipeline=batch: any
                               # larger value is a full permutation per epoch.
  image_size: int = 32       # Side of the training/eval crop (the tutorial uses 24).
  augment: list[str] = field(
      default_factory=lambda: ["pad_crop", "flip", "standardize"])
  pad: int = 4
  brightness_delta: float = 63.0 / 255.0
  contrast_lower: float = 0.2
  contrast_upper: float = 1.8
  cutout_size: int = 16
  trivial_augment_ranges: str = "wide"  # Or "standard": RandAugment's, milder.
  synthetic_train_size: int = 50000
  synthetic_eval_size: int = 10000
  check_labels: bool = True  # Read the label bytes once at start-up.
  # Train input: "batch" distorts whole batches of the split held in memory
  # (batch_augment.py, the faster one); "per_image" is the classic per-image
  # map (augment.py), the reference and the place to try a new distortion.
  pipeline: str = "batch"
  in_memory: str = "auto"    # Or stream the split from its files (streaming.py).


@dataclass
class TrainConfig:
  batch_size: int = 128
  epochs: float = 182.0
  steps: int = 0             # > 0 overrides epochs.
  weight_decay: float = 1e-4
  weight_decay_on: str = "kernels"
  label_smoothing: float = 0.0
  mixup_alpha: float = 0.0   # > 0: mixup with Beta(alpha, alpha) (model/mixup.py).
  clip_global_norm: float = 0.0
  clip_value: float = 0.0
  gradient_multipliers: dict[str, float] = field(default_factory=dict)
  trainable_scopes: list[str] = field(default_factory=list)
  precision: str = "float32"
  seed: int = 0              # 0: not seeded.
  steps_per_loop: int = 1    # Steps per session.run (model/train_loop.py).


@dataclass
class OptimizerConfig:
  name: str = "momentum"
  learning_rate: float = 0.1
  scale_lr_with_batch: bool = False  # lr = learning_rate * batch_size / 128.
  momentum: float = 0.9
  beta1: float = 0.9
  beta2: float = 0.999
  epsilon: float = 1e-7
  rho: float = 0.95
  decay: float = 0.9          # RMSProp discounting factor.
  initial_accumulator: float = 0.1
  l1: float = 0.0
  l2: float = 0.0
  learning_rate_power: float = -0.5  # FTRL: per-coordinate rate ~ n ** power.
  weight_decay: float = 0.0   # AdamW decoupled weight decay.


@dataclass
class ScheduleConfig:
  name: str = "constant"
  warmup_epochs: float = 0.0
  decay_rate: float = 0.1
  decay_epochs: float = 350.0
  staircase: bool = True
  end_learning_rate: float = 0.0   # polynomial and cosine: the final rate.
  # polynomial and cosine decay over this many epochs; 0: the whole run.
  horizon_epochs: float = 0.0
  power: float = 1.0
  cycle: bool = False
  boundaries_epochs: list[float] = field(default_factory=list)
  values: list[float] = field(default_factory=list)        # Absolute rates.
  multipliers: list[float] = field(default_factory=list)   # Or x base rate.


@dataclass
class EmaConfig:
  decay: float = 0.9999      # 0 turns the moving average off.
  eval_with_ema: bool = False


@dataclass
class CheckpointConfig:
  save_steps: int = 0        # > 0 wins over save_secs.
  save_secs: int = 600
  keep_max: int = 5
  keep_every_n_hours: float = 10000.0


@dataclass
class SummaryConfig:
  save_steps: int = 100
  histograms: bool = True
  histogram_steps: int = 0   # Histograms every N steps; 0: every save_steps.
  images: bool = True
  max_images: int = 3


@dataclass
class LogConfig:
  every_steps: int = 100


@dataclass
class EvalConfig:
  batch_size: int = 500
  throttle_secs: int = 600
  start_delay_secs: int = 0
  timeout_secs: int = 600    # continuous_eval: stop after this long idle.
  export_best: bool = True   # train_and_eval: SavedModel of the best accuracy.
  export_latest: int = 2     # train_and_eval: keep this many newest SavedModels.
  tta: str = "none"          # flip, flip_translate: eval, export, predict average views.


@dataclass
class ExportConfig:
  # Beside the SavedModel, which is always written: onnx, tflite (export_checks).
  formats: list[str] = field(default_factory=list)
  tflite_quantize: str = "none"  # none, dynamic, int8 (calibrated on train images).


@dataclass
class DistributeConfig:
  strategy: str = "default"
  num_gpus: int = -1         # -1: all visible GPUs.
  # CPU-only machines: split the CPU into this many logical devices so that
  # mirrored/central_storage have replicas to mirror over (tests, demos).
  num_cpu_devices: int = 0
  # Parameter-server workers wait min(this, 5 s x (index + 1)) before starting,
  # so the chief creates the variables first (Estimator's default cap is 60).
  max_worker_delay_secs: int = 60


@dataclass
class SessionConfig:
  intra_op_threads: int = 0  # 0: TensorFlow picks.
  inter_op_threads: int = 0
  gpu_memory_fraction: float = 0.0
  allow_growth: bool = True
  log_device_placement: bool = False
  xla: bool = False


@dataclass
class WarmStartConfig:
  include: list[str] = field(default_factory=lambda: [".*"])
  exclude: list[str] = field(default_factory=list)
  rename: dict[str, str] = field(default_factory=dict)
  ignore_missing: bool = False
  values_npz: str = ""


@dataclass
class ExperimentConfig:
  """One experiment, fully resolved. Sections may gain fields; names stay."""
  name: str = ""
  description: str = ""
  model: ModelConfig = field(default_factory=ModelConfig)
  data: DataConfig = field(default_factory=DataConfig)
  train: TrainConfig = field(default_factory=TrainConfig)
  optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
  schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
  ema: EmaConfig = field(default_factory=EmaConfig)
  checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
  summary: SummaryConfig = field(default_factory=SummaryConfig)
  log: LogConfig = field(default_factory=LogConfig)
  eval: EvalConfig = field(default_factory=EvalConfig)
  export: ExportConfig = field(default_factory=ExportConfig)
  distribute: DistributeConfig = field(default_factory=DistributeConfig)
  session: SessionConfig = field(default_factory=SessionConfig)
  warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# ---------------------------------------------------------------- experiments

def list_experiments() -> dict[str, str]:
  """Maps every experiment name on the search path to its one-line summary.

  The search path is `experiment_files.search_dirs()`: added folders, then
  $ESTIMATOR_CIFAR_EXPERIMENTS, then the built-in experiments.
  """
  return {name: experiment_files.summary(path)
          for name, path in experiment_files.all_files().items()}


def load_experiment(name_or_path: str) -> ExperimentConfig:
  """Returns a fresh config from experiment `name_or_path` or a file path.

  Raises:
    ConfigError: the experiment does not exist (lists the known ones) or its
      file does not define `get_config()` returning an ExperimentConfig.
  """
  if experiment_files.is_path(name_or_path):
    path = paths.expand(name_or_path)
    name = os.path.splitext(os.path.basename(path))[0]
  else:
    name = name_or_path
    path = experiment_files.find(name) or os.path.join(
        experiment_files.builtin_dir(), name + ".py")
  if not os.path.isfile(path):
    known = ", ".join(sorted(experiment_files.all_files())) or "(none)"
    close = difflib.get_close_matches(name, experiment_files.all_files(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"Unknown experiment '{name_or_path}': no file {name}.py in "
        f"{', '.join(experiment_files.search_dirs())}.{hint} Known "
        f"experiments: {known}. Pass --experiment=NAME for one of these, "
        "--experiment=path/to/file.py for your own file, or add its folder "
        f"with --experiments_dir=DIR or ${experiment_files.ENV_VAR}.")
  module = experiment_files.import_file(path, name)
  get_config = getattr(module, "get_config", None)
  if get_config is None:
    raise ConfigError(f"Experiment file {path} defines no get_config(); add "
                      "`def get_config() -> ExperimentConfig`.")
  cfg = get_config()
  if not isinstance(cfg, ExperimentConfig):
    raise ConfigError(f"get_config() in {path} returned "
                      f"{type(cfg).__name__}, not an ExperimentConfig.")
  # Named after the file it came from: a variant that loads a base experiment
  # and changes it is its own experiment (the outermost load assigns last).
  cfg.name = name
  doc = (module.__doc__ or "").strip().splitlines()
  if doc:
    cfg.description = doc[0]
  return cfg


# ----------------------------------------------------------------- validation

_CHOICES = {
    "model.name": MODEL_NAMES, "data.name": DATA_NAMES,
    "data.source": DATA_SOURCES, "data.label": LABEL_KINDS,
    "data.pipeline": PIPELINES, "data.in_memory": ("auto", "true", "false"),
    "data.trivial_augment_ranges": TRIVIAL_AUGMENT_RANGES,
    "optimizer.name": OPTIMIZER_NAMES, "schedule.name": SCHEDULE_NAMES,
    "train.precision": PRECISIONS + (PRECISION_AUTO,),
    "train.weight_decay_on": WEIGHT_DECAY_ON, "distribute.strategy": STRATEGIES,
    "eval.tta": EVAL_TTA}

_POSITIVE = ("train.batch_size", "eval.batch_size", "data.image_size",
             "data.shuffle_buffer", "summary.save_steps", "log.every_steps",
             "checkpoint.keep_max", "train.steps_per_loop")
_NON_NEGATIVE = ("summary.histogram_steps", "distribute.num_cpu_devices",
                 "distribute.max_worker_delay_secs", "train.mixup_alpha")


def get(cfg: ExperimentConfig, key: str) -> Any:
  section, _, name = key.partition(".")
  return getattr(getattr(cfg, section), name)


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
  """Checks choices, ranges and combinations; returns `cfg`.

  Raises:
    ConfigError: the first problem, naming the field, the valid choices and
      the fix.
  """
  for key, choices in _CHOICES.items():
    if get(cfg, key) not in choices:
      raise ConfigError(f"{key}='{get(cfg, key)}' is not one of: "
                        f"{', '.join(choices)}. Fix the experiment or pass "
                        f"--params_override={key}={choices[0]}.")
  for aug in cfg.data.augment:
    if aug not in AUGMENTATIONS:
      raise ConfigError(f"data.augment has unknown '{aug}'; choose from: "
                        f"{', '.join(AUGMENTATIONS)}.")
  for key in _POSITIVE:
    if get(cfg, key) <= 0:
      raise ConfigError(f"{key} must be positive, got {get(cfg, key)}. Fix the "
                        f"experiment or pass --params_override={key}=<a "
                        "positive value>.")
  if cfg.train.steps <= 0 and cfg.train.epochs <= 0:
    raise ConfigError("Set train.steps > 0 or train.epochs > 0 to say how long "
                      "to train.")
  depth, name = cfg.model.depth, cfg.model.name
  if name == "resnet" and (depth < 8 or (depth - 2) % 6):
    raise ConfigError(f"model.depth={depth} is not a CIFAR ResNet depth 6n+2 "
                      "(8, 14, 20, 32, 44, 56, 110, ...).")
  if name == "wide_resnet" and (depth < 10 or (depth - 4) % 6):
    raise ConfigError(f"model.depth={depth} is not a wide-ResNet depth 6n+4 "
                      "(10, 16, 22, 28, 40, ...).")
  if cfg.model.version not in (1, 2):
    raise ConfigError(f"model.version={cfg.model.version}: use 1 (original "
                      "ResNet) or 2 (pre-activation).")
  if not 0 <= cfg.ema.decay < 1:
    raise ConfigError(f"ema.decay={cfg.ema.decay} must be in [0, 1); 0 turns "
                      "the moving average off.")
  if cfg.ema.eval_with_ema and cfg.ema.decay == 0:
    raise ConfigError("ema.eval_with_ema=true needs ema.decay > 0.")
  if not 0 < cfg.data.image_size <= 32:
    raise ConfigError(f"data.image_size={cfg.data.image_size} must be in 1..32.")
  if cfg.data.source == "tfds" and cfg.data.name == "synthetic":
    raise ConfigError("data.source=tfds cannot serve data.name=synthetic; use "
                      "data.source=binary.")
  loop_support.check(cfg)
  export_checks.check(cfg.export)
  sched = cfg.schedule
  if cfg.optimizer.name == "ftrl" and sched.warmup_epochs > 0:
    raise ConfigError(
        "optimizer.name=ftrl cannot warm up from 0: FTRL computes the weights "
        "from its accumulators times the current rate, so a rate of 0 at step "
        "0 sets every weight to 0. Set schedule.warmup_epochs=0.")
  _validate_runtime(cfg)
  if sched.name == "piecewise":
    given = sched.values or sched.multipliers
    if len(given) != len(sched.boundaries_epochs) + 1:
      raise ConfigError(
          "schedule.name=piecewise needs one more value than boundaries: got "
          f"{len(sched.boundaries_epochs)} boundaries_epochs and {len(given)} "
          "values/multipliers.")
    if sorted(sched.boundaries_epochs) != list(sched.boundaries_epochs):
      raise ConfigError("schedule.boundaries_epochs must be increasing.")
  return cfg


def _validate_runtime(cfg: ExperimentConfig) -> None:
  """Checks of the summary, distribute and gradient fields."""
  for key in _NON_NEGATIVE:
    if get(cfg, key) < 0:
      raise ConfigError(f"{key}={get(cfg, key)} must be >= 0. Fix the "
                        f"experiment or pass --params_override={key}=0 (or "
                        "more).")
  n, strategy = cfg.distribute.num_cpu_devices, cfg.distribute.strategy
  if n > 1 and strategy not in SYNC_LOCAL_STRATEGIES:
    raise ConfigError(f"distribute.num_cpu_devices={n} only serves "
                      "distribute.strategy=mirrored or central_storage, not "
                      f"{strategy}.")
  for pattern in (list(cfg.train.gradient_multipliers) +
                  cfg.train.trainable_scopes):
    try:
      re.compile(pattern)
    except re.error as e:
      raise ConfigError(f"'{pattern}' in train.gradient_multipliers or "
                        f"train.trainable_scopes is not a regular expression "
                        f"({e}). Write a variable-name prefix such as "
                        "resnet/logits.") from None


def resolve(experiment: str, overrides: list[str]) -> ExperimentConfig:
  """Experiment defaults, then overrides, then validation: the fixed order."""
  return validate(apply_overrides(load_experiment(experiment), overrides))


def from_dict(values: dict[str, Any]) -> ExperimentConfig:
  """Rebuilds a config from `config.json`; unknown keys are ignored (older runs)."""
  return set_from_dict(ExperimentConfig(), values)
