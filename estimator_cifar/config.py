"""The typed experiment config: sections and experiment loading.

An experiment is data: `experiments/<name>.py` defines `get_config()` that
returns a fresh `ExperimentConfig`. The order is fixed: experiment defaults,
then command-line overrides (`a.b=v`, overrides.py), then `validate` (every
check, in config_checks.py; none needs TensorFlow), then the final config is
written to `<model_dir>/config.json`. No TensorFlow here, so a typo fails before any
graph is built.
"""

import dataclasses
import difflib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from estimator_cifar import experiment_files, paths
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

def get(cfg: ExperimentConfig, key: str) -> Any:
  """The value of `section.field` in `cfg`."""
  section, _, name = key.partition(".")
  return getattr(getattr(cfg, section), name)


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
  """Checks ranges, limits, choices and combinations (config_checks.py).

  Raises:
    ConfigError: the first problem, naming the field and the fix.
  """
  # Imported here: config_checks reads this module's choices at its import.
  from estimator_cifar import config_checks
  return config_checks.validate(cfg)


def resolve(experiment: str, overrides: list[str]) -> ExperimentConfig:
  """Experiment defaults, then overrides, then validation: the fixed order."""
  return validate(apply_overrides(load_experiment(experiment), overrides))


def from_dict(values: dict[str, Any]) -> ExperimentConfig:
  """Rebuilds a config from `config.json`; unknown keys are ignored (older runs)."""
  return set_from_dict(ExperimentConfig(), values)
