"""The typed experiment config: sections, experiment loading, overrides, checks.

An experiment is data: `experiments/<name>.py` defines `get_config()` that
returns a fresh `ExperimentConfig`. The order is fixed and documented in the
README: experiment defaults, then command-line overrides (`a.b=v`, typed by the
field), then `validate`, then the final config is logged and written to
`<model_dir>/config.json`.

This module imports no TensorFlow, so a typo in a flag is answered in well under
a second, before any graph is built.
"""

import dataclasses
import difflib
import importlib.util
import json
import os
import typing
from dataclasses import dataclass, field
from typing import Any

from estimator_cifar.errors import ConfigError

EXPERIMENTS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments")

# Choices live here (not in the TF modules) so validation needs no TensorFlow;
# tests check that each registry implements exactly these names.
MODEL_NAMES = ("resnet", "wide_resnet", "convnet", "tiny")
DATA_NAMES = ("cifar10", "cifar100", "synthetic")
DATA_SOURCES = ("binary", "tfds")
LABEL_KINDS = ("fine", "coarse")
PIPELINES = ("batch", "per_image")
AUGMENTATIONS = ("pad_crop", "random_crop", "flip", "brightness", "contrast",
                 "standardize", "cutout")
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adam", "adamw", "adagrad",
                   "adadelta", "rmsprop", "ftrl")
SCHEDULE_NAMES = ("constant", "exponential", "polynomial", "piecewise", "cosine")
# auto: picked from the device at start (engine/precision.py).
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")
EVAL_TTA = ("none", "flip")  # Test-time augmentation (model/tta.py).
WEIGHT_DECAY_ON = ("kernels", "all", "dense_kernels")
STRATEGIES = ("default", "mirrored", "central_storage", "multi_worker_mirrored",
              "parameter_server")


@dataclass
class ModelConfig:
  name: str = "resnet"
  depth: int = 20            # ResNet: 6n+2; wide ResNet: 6n+4.
  version: int = 1           # ResNet 1 (He et al. 2016a) or 2 (pre-activation).
  width: int = 1             # Wide-ResNet widening factor k.
  dropout: float = 0.0       # Wide-ResNet dropout between the two convs.
  # 0.9 (PyTorch's default, used by most CIFAR ResNet reproductions): at lr 0.1
  # the weights outrun a slower average. Measured on 300 steps of resnet_sgd:
  # eval accuracy 29.3% with 0.99 against 100% with 0.9 (README, Results).
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
  synthetic_train_size: int = 50000
  synthetic_eval_size: int = 10000
  check_labels: bool = True  # Read the label bytes once at start-up.
  # Train input: "batch" holds the decoded split in memory as one uint8
  # tensor, draws a full permutation per epoch and distorts whole batches
  # (batch_augment.py; 2.9x the per-image rate, README Performance);
  # "per_image" is the classic cache -> shuffle (shuffle_buffer) -> per-image
  # map (augment.py): a reference for the batch version, and the place to
  # try a new per-image distortion first. Both keep the split in memory.
  pipeline: str = "batch"


@dataclass
class TrainConfig:
  batch_size: int = 128
  epochs: float = 182.0
  steps: int = 0             # > 0 overrides epochs.
  weight_decay: float = 1e-4
  weight_decay_on: str = "kernels"
  label_smoothing: float = 0.0
  clip_global_norm: float = 0.0
  clip_value: float = 0.0
  gradient_multipliers: dict[str, float] = field(default_factory=dict)
  trainable_scopes: list[str] = field(default_factory=list)
  precision: str = "float32"
  seed: int = 0              # 0: not seeded.


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
  # flip: eval, export and predict average the logits of image and mirror.
  tta: str = "none"


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
  """Maps every experiment name under `experiments/` to its one-line summary."""
  found = {}
  for fname in sorted(os.listdir(EXPERIMENTS_DIR)):
    if fname.endswith(".py") and not fname.startswith("_"):
      name = fname[:-3]
      module = _import_file(os.path.join(EXPERIMENTS_DIR, fname), name)
      doc = (module.__doc__ or "").strip().splitlines()
      found[name] = doc[0] if doc else ""
  return found


def load_experiment(name_or_path: str) -> ExperimentConfig:
  """Returns a fresh config from `experiments/<name>.py` or a file path.

  Raises:
    ConfigError: the experiment does not exist (lists the known ones) or its
      file does not define `get_config()` returning an ExperimentConfig.
  """
  if name_or_path.endswith(".py") or os.sep in name_or_path:
    path = name_or_path
    name = os.path.splitext(os.path.basename(path))[0]
  else:
    name = name_or_path
    path = os.path.join(EXPERIMENTS_DIR, name + ".py")
  if not os.path.isfile(path):
    known = ", ".join(sorted(list_experiments())) or "(none)"
    raise ConfigError(
        f"Unknown experiment '{name_or_path}': there is no file {path}. Known "
        f"experiments: {known}. Pass --experiment=NAME for a file "
        f"experiments/NAME.py, or --experiment=path/to/file.py.")
  module = _import_file(path, name)
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


def _import_file(path: str, name: str):
  spec = importlib.util.spec_from_file_location(f"experiments.{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# ------------------------------------------------------------------ overrides

def split_overrides(overrides: list[str]) -> list[tuple[str, str]]:
  """Splits `a.b=v,c.d=w` strings into (key, value) pairs.

  A comma-separated piece without `=` continues the previous value, so list
  values need no quoting: `schedule.boundaries_epochs=91,136,train.steps=5`.
  Brackets may group a list: `x=[1,2]`.

  Raises:
    ConfigError: a piece before the first `key=` or with an empty key.
  """
  pairs: list[list[str]] = []
  for text in overrides:
    for piece in _split_top_level_commas(text):
      if not piece.strip():
        continue
      key, sep, value = piece.partition("=")
      if sep and key.strip() and not any(c in key for c in "[]{}:"):
        pairs.append([key.strip(), value.strip()])
      elif pairs:
        pairs[-1][1] += "," + piece.strip()
      else:
        raise ConfigError(
            f"Malformed --params_override '{text}': '{piece}' is not of the "
            "form section.field=value. Example: "
            "--params_override=train.steps=100,optimizer.learning_rate=0.05")
  return [(k, v) for k, v in pairs]


def _split_top_level_commas(text: str) -> list[str]:
  pieces, depth, cur = [], 0, []
  for ch in text:
    if ch in "[{":
      depth += 1
    elif ch in "]}":
      depth = max(0, depth - 1)
    if ch == "," and depth == 0:
      pieces.append("".join(cur))
      cur = []
    else:
      cur.append(ch)
  pieces.append("".join(cur))
  return pieces


def all_keys(cfg: ExperimentConfig) -> list[str]:
  """Every dotted name an override can set, e.g. `train.steps`."""
  keys = []
  for f in dataclasses.fields(cfg):
    value = getattr(cfg, f.name)
    if dataclasses.is_dataclass(value):
      keys.extend(f"{f.name}.{sub.name}" for sub in dataclasses.fields(value))
    else:
      keys.append(f.name)
  return keys


def apply_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
  """Applies `--params_override` strings to `cfg` in place and returns it.

  Raises:
    ConfigError: unknown key (with the closest names) or a value that does not
      parse as the field's type.
  """
  for key, raw in split_overrides(overrides):
    section, _, name = key.rpartition(".")
    # Only through fields: `__class__.name` must not reach the class object.
    sections = {f.name for f in dataclasses.fields(cfg)}
    target = cfg if not section else (
        getattr(cfg, section) if section in sections else None)
    if target is None or not dataclasses.is_dataclass(target) or \
        name not in {f.name for f in dataclasses.fields(target)} or \
        dataclasses.is_dataclass(getattr(target, name)):
      close = difflib.get_close_matches(key, all_keys(cfg), n=3, cutoff=0.5)
      hint = (f" Did you mean {', '.join(close)}?" if close else
              " Run with --list_params to see every field.")
      raise ConfigError(f"Unknown config key '{key}' in --params_override.{hint}")
    hint_type = typing.get_type_hints(type(target))[name]
    setattr(target, name, parse_value(key, raw, hint_type))
  return cfg


def parse_value(key: str, raw: str, hint) -> Any:
  """Parses `raw` as the type `hint` of field `key`; ConfigError if it can't."""
  text = raw.strip()
  origin = typing.get_origin(hint)
  try:
    if origin is list:
      (item,) = typing.get_args(hint)
      body = text[1:-1] if text.startswith("[") and text.endswith("]") else text
      return [_parse_scalar(p.strip(), item) for p in body.split(",") if p.strip()]
    if origin is dict:
      _, item = typing.get_args(hint)
      body = text[1:-1] if text.startswith("{") and text.endswith("}") else text
      out = {}
      for pair in (p for p in body.split(",") if p.strip()):
        k, sep, v = pair.rpartition(":")
        if not sep or not k.strip():
          raise ValueError(f"'{pair}' is not key:value")
        out[k.strip()] = _parse_scalar(v.strip(), item)
      return out
    return _parse_scalar(text, hint)
  except ValueError as e:
    raise ConfigError(
        f"Bad value for {key}: '{raw}' is not {_type_words(hint)} ({e}). "
        f"Example: --params_override={key}={_example(hint)}") from None


def _parse_scalar(text: str, typ):
  if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
    text = text[1:-1]
  if typ is bool:
    low = text.lower()
    if low in ("true", "1", "yes", "on"):
      return True
    if low in ("false", "0", "no", "off"):
      return False
    raise ValueError("expected true or false")
  if typ is int:
    return int(text)
  if typ is float:
    return float(text)
  return text


def _type_words(hint) -> str:
  origin = typing.get_origin(hint)
  if origin is list:
    return f"a list of {_type_words(typing.get_args(hint)[0])} values"
  if origin is dict:
    return f"a map of name:{_type_words(typing.get_args(hint)[1])} pairs"
  return {int: "an integer", float: "a number", bool: "true or false",
          str: "a string"}.get(hint, str(hint))


def _example(hint) -> str:
  origin = typing.get_origin(hint)
  if origin is list:
    return "[" + ",".join([_example(typing.get_args(hint)[0])] * 2) + "]"
  if origin is dict:
    return "name:" + _example(typing.get_args(hint)[1])
  return {int: "100", float: "0.1", bool: "true", str: "value"}.get(hint, "")


# ----------------------------------------------------------------- validation

_CHOICES = {
    "model.name": MODEL_NAMES, "data.name": DATA_NAMES,
    "data.source": DATA_SOURCES, "data.label": LABEL_KINDS,
    "data.pipeline": PIPELINES,
    "optimizer.name": OPTIMIZER_NAMES, "schedule.name": SCHEDULE_NAMES,
    "train.precision": PRECISIONS, "train.weight_decay_on": WEIGHT_DECAY_ON,
    "distribute.strategy": STRATEGIES, "eval.tta": EVAL_TTA,
}

_POSITIVE = ("train.batch_size", "eval.batch_size", "data.image_size",
             "data.shuffle_buffer", "summary.save_steps", "log.every_steps",
             "checkpoint.keep_max")


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
      raise ConfigError(f"{key} must be positive, got {get(cfg, key)}.")
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
  sched = cfg.schedule
  if cfg.optimizer.name == "ftrl" and sched.warmup_epochs > 0:
    raise ConfigError(
        "optimizer.name=ftrl cannot warm up from 0: FTRL computes the weights "
        "from its accumulators times the current rate, so a rate of 0 at step "
        "0 sets every weight to 0. Set schedule.warmup_epochs=0.")
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


def resolve(experiment: str, overrides: list[str]) -> ExperimentConfig:
  """Experiment defaults, then overrides, then validation: the fixed order."""
  return validate(apply_overrides(load_experiment(experiment), overrides))


def from_dict(values: dict[str, Any]) -> ExperimentConfig:
  """Rebuilds a config from `config.json`; unknown keys are ignored (older runs)."""
  cfg = ExperimentConfig()
  for f in dataclasses.fields(cfg):
    if f.name not in values:
      continue
    current = getattr(cfg, f.name)
    if dataclasses.is_dataclass(current):
      known = {sub.name for sub in dataclasses.fields(current)}
      for k, v in values[f.name].items():
        if k in known:
          setattr(current, k, v)
    else:
      setattr(cfg, f.name, values[f.name])
  return cfg
