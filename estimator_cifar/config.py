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
from estimator_cifar import overrides as overrides_lib
from estimator_cifar.data import cifar
from estimator_cifar.errors import ConfigError
# The override parser, re-exported: callers resolve configs through this module.
from estimator_cifar.overrides import (all_keys, parse_value,  # noqa: F401
                                       split_overrides)

# Here, not in the TF modules, so validation needs no TensorFlow.
DATA_NAMES = tuple(cifar.DATASETS)
DATA_SOURCES = ("binary", "tfds", "folder")
LABEL_KINDS = ("fine", "coarse")
PIPELINES = ("batch",)  # The per-image map is gone: the same ops, slower.
AUGMENTATIONS = ("pad_crop", "random_crop", "flip", "trivial_augment",
                 "brightness", "contrast", "standardize", "cutout")
TRIVIAL_AUGMENT_RANGES = ("wide", "standard")  # data/trivial_augment.py's RANGES.
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adam", "adamw", "adagrad",
                   "adadelta", "rmsprop", "ftrl")
SCHEDULE_NAMES = ("constant", "exponential", "polynomial", "piecewise", "cosine")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
PRECISION_AUTO = "auto"  # Picks one of PRECISIONS from the device (engine/precision.py).
EVAL_TTA = ("none", "flip", "flip_translate")  # Test-time augmentation (model/tta.py).
CALIBRATIONS = ("none", "temperature")  # engine/temperatures.py.
EXPORT_BEST = ("auto", "true", "false")
WEIGHT_DECAY_ON = ("kernels", "all", "dense_kernels")
STRATEGIES = ("default", "mirrored", "central_storage", "multi_worker_mirrored",
              "parameter_server")
SYNC_LOCAL_STRATEGIES = ("mirrored", "central_storage")  # One machine's devices.


class _Section:
  """A config section: setting a field it does not have is an error.

  Catches `cfg.model.dept = 56` in an experiment file, which would otherwise
  add an attribute nobody reads.
  """

  def __setattr__(self, name: str, value: Any) -> None:
    if name not in self.__dataclass_fields__:
      section = _section_names().get(type(self), "")
      key = f"{section}.{name}" if section else name
      close = overrides_lib.close_keys(key, all_keys(ExperimentConfig()))
      hint = (f"Did you mean {', '.join(close)}?" if close else
              "--list_params lists every field.")
      raise ConfigError(f"Unknown config field {key}: {type(self).__name__} "
                        f"has no field '{name}'. {hint}")
    super().__setattr__(name, value)


@dataclass
class ModelConfig(_Section):
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
class DataConfig(_Section):
  name: str = "cifar10"
  source: str = "binary"     # binary files, tensorflow-datasets or class folders.
  label: str = "fine"        # CIFAR-100 only: fine (100) or coarse (20) labels.
  tfds_dir: str = ""
  shuffle_buffer: int = 50000  # <= 1: no shuffle; any larger value is a
                               # full permutation per epoch.
  image_size: int = cifar.SIDE  # Side of the training/eval crop (the tutorial uses 24).
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
  # Train input: "batch" distorts whole batches (augment.py). The only one
  # left; kept so that recorded configs and overrides naming it still load.
  pipeline: str = "batch"
  in_memory: str = "auto"    # Or stream the split from its files (streaming.py).
  # Training images held out to evaluate on, so that choices made on the
  # evaluation never see the test split (data/validation_split.py); 0: none.
  validation_size: int = 0


@dataclass
class TrainConfig(_Section):
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
class OptimizerConfig(_Section):
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
class ScheduleConfig(_Section):
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
class EmaConfig(_Section):
  decay: float = 0.9999      # 0 turns the moving average off.
  eval_with_ema: bool = False


@dataclass
class CheckpointConfig(_Section):
  save_steps: int = 0        # > 0 wins over save_secs.
  save_secs: int = 600
  keep_max: int = 5
  keep_every_n_hours: float = 10000.0


@dataclass
class SummaryConfig(_Section):
  save_steps: int = 100
  histograms: bool = True
  histogram_steps: int = 0   # Histograms every N steps; 0: every save_steps.
  images: bool = True
  max_images: int = 3


@dataclass
class LogConfig(_Section):
  every_steps: int = 100


@dataclass
class EvalConfig(_Section):
  batch_size: int = 500
  throttle_secs: int = 600
  start_delay_secs: int = 0
  timeout_secs: int = 600    # continuous_eval: stop after this long idle.
  export_best: str = "auto"  # Best-accuracy SavedModel; auto: with a validation split.
  export_latest: int = 2     # train_and_eval: keep this many newest SavedModels.
  tta: str = "none"          # flip, flip_translate: eval, export, predict average views.
  # temperature: fit softmax(logits / T) on the validation split, for every
  # checkpoint that is exported or scored on the test split.
  calibration: str = "none"


@dataclass
class ExportConfig(_Section):
  # Beside the SavedModel, which is always written: onnx, tflite (export_checks).
  formats: list[str] = field(default_factory=list)
  tflite_quantize: str = "none"  # none, dynamic, int8 (calibrated on train images).


@dataclass
class DistributeConfig(_Section):
  strategy: str = "default"
  num_gpus: int = -1         # -1: all visible GPUs.
  # CPU-only machines: split the CPU into this many logical devices so that
  # mirrored/central_storage have replicas to mirror over (tests, demos).
  num_cpu_devices: int = 0
  # Parameter-server workers wait min(this, 5 s x (index + 1)) before starting,
  # so the chief creates the variables first (Estimator's default cap is 60).
  max_worker_delay_secs: int = 60


@dataclass
class SessionConfig(_Section):
  intra_op_threads: int = 0  # 0: TensorFlow picks.
  inter_op_threads: int = 0
  gpu_memory_fraction: float = 0.0
  allow_growth: bool = True
  log_device_placement: bool = False
  xla: bool = False


@dataclass
class WarmStartConfig(_Section):
  include: list[str] = field(default_factory=lambda: [".*"])
  exclude: list[str] = field(default_factory=list)
  rename: dict[str, str] = field(default_factory=dict)
  ignore_missing: bool = False
  values_npz: str = ""


@dataclass
class ExperimentConfig(_Section):
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


def _section_names() -> dict[type, str]:
  """Each section class and its field name in ExperimentConfig."""
  return {f.type: f.name for f in dataclasses.fields(ExperimentConfig)
          if dataclasses.is_dataclass(f.type)}


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
    if not os.path.isfile(path):
      raise ConfigError(
          f"Experiment file {os.path.abspath(path)} does not exist. Check the "
          "path, or pass --experiment=NAME for an experiment on the search "
          "path (--list_experiments lists them).")
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
  if experiment_files.is_recorded_config(path):
    # A run's config.json (or a file like it): rerun what it recorded.
    cfg = set_from_dict(ExperimentConfig(), experiment_files.read_config_file(
        path), source=path)
    cfg.name = cfg.name or name
    return cfg
  module = experiment_files.import_file(path, name)
  get_config = getattr(module, "get_config", None)
  if get_config is None:
    raise ConfigError(f"Experiment file {path} defines no get_config(); add "
                      "`def get_config() -> ExperimentConfig`.")
  try:
    cfg = get_config()
  except ConfigError as e:  # E.g. a mistyped field: say which file set it.
    raise ConfigError(f"In {path}: {e}") from e
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

def choices(key: str) -> tuple[str, ...] | None:
  """The values field `key` allows, or None where any value of its type goes."""
  from estimator_cifar import config_checks  # It reads this module's tables.
  return config_checks.choices(key)


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


def resolve(experiment: str | None, overrides: list[str],
            config_file: str | None = None) -> ExperimentConfig:
  """Experiment defaults, then `config_file`, then overrides, then validation.

  `experiment` None starts from the fields' defaults. `config_file` is JSON
  in the format of a run's config.json; the fields it names replace the
  experiment's.
  """
  cfg = load_experiment(experiment) if experiment else ExperimentConfig()
  if config_file:
    set_from_dict(cfg, experiment_files.read_config_file(config_file),
                  source=config_file)
  return validate(apply_overrides(cfg, overrides))


def apply_overrides(cfg: ExperimentConfig, overrides: list[str]
                    ) -> ExperimentConfig:
  """`overrides.apply_overrides`, a bad choice reported as an override's."""
  return overrides_lib.apply_overrides(cfg, overrides, choices)


def set_from_dict(cfg: ExperimentConfig, values: dict[str, Any],
                  source: str | None = None) -> ExperimentConfig:
  """`overrides.set_from_dict`, strict about names, types and choices when
  `source` names the user's file."""
  return overrides_lib.set_from_dict(cfg, values, source,
                                     choices if source else None)


def from_dict(values: dict[str, Any]) -> ExperimentConfig:
  """Rebuilds a config from `config.json`; unknown keys are ignored (older runs)."""
  return set_from_dict(ExperimentConfig(), values)
