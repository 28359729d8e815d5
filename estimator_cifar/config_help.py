"""What each config field means, and `--list_params`' table built from it.

MEANINGS is the one home of every field's one-line meaning; a test checks it
names exactly the fields of `config.ExperimentConfig`. Types come from the
dataclasses and allowed values from `config.choices`, so neither is repeated.
"""

import typing

from estimator_cifar import config as config_lib

MEANINGS = {
    "name": "the experiment's name (set from its file name)",
    "description": "the experiment's one-line summary (its docstring)",
    "model.name": "the network (a built-in or one added with register_network)",
    "model.depth": "layers: ResNet 6n+2 (20, 56, 110), wide ResNet 6n+4 (28)",
    "model.version": "ResNet 1 (original) or 2 (pre-activation)",
    "model.width": "wide ResNet's widening factor k",
    "model.dropout": "wide ResNet's dropout between the two convolutions",
    "model.bn_momentum": "batch-norm moving-average momentum",
    "model.bn_epsilon": "batch-norm epsilon",
    "data.name": "the dataset (synthetic: random images, no download)",
    "data.source": "binary files under --data_dir, or tensorflow-datasets",
    "data.label": "CIFAR-100 only: fine (100 classes) or coarse (20) labels",
    "data.tfds_dir": "data.source=tfds: where tensorflow-datasets keeps data",
    "data.shuffle_buffer": "training shuffle buffer; <= 1 turns shuffling off",
    "data.image_size": "side of the training and eval crop, in pixels",
    "data.augment": "training distortions, applied in this order",
    "data.pad": "pad_crop: pixels of padding before the random crop",
    "data.brightness_delta": "brightness: the largest change, as a fraction",
    "data.contrast_lower": "contrast: the smallest factor",
    "data.contrast_upper": "contrast: the largest factor",
    "data.cutout_size": "cutout: side of the square masked out",
    "data.trivial_augment_ranges": "trivial_augment: wide or standard ranges",
    "data.synthetic_train_size": "data.name=synthetic: training images",
    "data.synthetic_eval_size": "data.name=synthetic: eval images",
    "data.check_labels": "read the label bytes once at start-up and check them",
    "data.pipeline": "batch: each distortion runs on a whole batch (the only pipeline)",
    "data.in_memory": "hold a split in memory, or stream it from its files",
    "data.validation_size": "training images held out as the validation split; 0: none",
    "train.batch_size": "images per step, over all replicas",
    "train.epochs": "how long to train, in passes over the training set",
    "train.steps": "how long to train, in steps; > 0 wins over train.epochs",
    "train.weight_decay": "L2 penalty on the weights in the loss",
    "train.weight_decay_on": "which variables the L2 penalty covers",
    "train.label_smoothing": "label smoothing of the cross-entropy",
    "train.mixup_alpha": "> 0: mixup with Beta(alpha, alpha)",
    "train.clip_global_norm": "> 0: clip the gradients' global norm to this",
    "train.clip_value": "> 0: clip each gradient element to +-this",
    "train.gradient_multipliers": "{regex: factor}: scale matching gradients",
    "train.trainable_scopes": "train only variables under these prefixes",
    "train.precision": "float32, mixed precision, or auto (measured on this machine)",
    "train.seed": "random seed; 0 leaves the run unseeded",
    "train.steps_per_loop": "training steps per session.run",
    "optimizer.name": "the optimizer",
    "optimizer.learning_rate": "the base learning rate (before the schedule)",
    "optimizer.scale_lr_with_batch": "multiply the rate by batch_size / 128",
    "optimizer.momentum": "momentum and nesterov: the momentum",
    "optimizer.beta1": "adam and adamw: first-moment decay",
    "optimizer.beta2": "adam and adamw: second-moment decay",
    "optimizer.epsilon": "adam, adamw, adadelta, rmsprop: numerical epsilon",
    "optimizer.rho": "adadelta: the decay rate",
    "optimizer.decay": "rmsprop: the discounting factor",
    "optimizer.initial_accumulator": "adagrad and ftrl: starting accumulator",
    "optimizer.l1": "ftrl: L1 regularization strength",
    "optimizer.l2": "ftrl: L2 regularization strength",
    "optimizer.learning_rate_power": "ftrl: per-coordinate rate ~ n ** power",
    "optimizer.weight_decay": "adamw: decoupled weight decay",
    "schedule.name": "how the learning rate changes over the run",
    "schedule.warmup_epochs": "epochs of linear warm-up from 0",
    "schedule.decay_rate": "exponential: factor per decay_epochs",
    "schedule.decay_epochs": "exponential: epochs per decay_rate",
    "schedule.staircase": "exponential: decay in steps rather than smoothly",
    "schedule.end_learning_rate": "polynomial and cosine: the final rate",
    "schedule.horizon_epochs": "polynomial and cosine: decay length; 0: run",
    "schedule.power": "polynomial: the exponent",
    "schedule.cycle": "polynomial: restart after the horizon",
    "schedule.boundaries_epochs": "piecewise: epochs where the rate changes",
    "schedule.values": "piecewise: absolute rates, one more than boundaries",
    "schedule.multipliers": "piecewise: or factors of the base rate",
    "ema.decay": "weights' moving-average decay; 0 turns it off",
    "ema.eval_with_ema": "evaluate, export and predict with averaged weights",
    "checkpoint.save_steps": "> 0: save every this many steps (wins)",
    "checkpoint.save_secs": "save every this many seconds",
    "checkpoint.keep_max": "checkpoints kept (the newest)",
    "checkpoint.keep_every_n_hours": "also keep one checkpoint per this long",
    "summary.save_steps": "write TensorBoard summaries every this many steps",
    "summary.histograms": "write weight and gradient histograms",
    "summary.histogram_steps": "histograms every N steps; 0: save_steps",
    "summary.images": "write a few input images",
    "summary.max_images": "input images per summary",
    "log.every_steps": "print a progress line every this many steps",
    "eval.batch_size": "images per eval step",
    "export.formats": "written beside the SavedModel, parity-checked: onnx, tflite",
    "export.tflite_quantize": "tflite weights: none, dynamic, or int8 "
                              "(calibrated on training images)",
    "eval.throttle_secs": "least seconds between the starts of two evals",
    "eval.start_delay_secs": "seconds to wait before the first eval",
    "eval.timeout_secs": "continuous_eval: stop after this long idle",
    "eval.export_best": "train_and_eval: keep a SavedModel of the best "
                        "validation accuracy (auto: with a validation split)",
    "eval.calibration": "temperature: fit softmax(logits / T) on the "
                        "validation split for the returned probabilities",
    "eval.export_latest": "train_and_eval: keep this many newest SavedModels",
    "eval.tta": "test-time augmentation: average flipped or shifted views",
    "distribute.strategy": "how training is spread over devices or hosts",
    "distribute.num_gpus": "GPUs to use; -1: all visible",
    "distribute.num_cpu_devices": "split the CPU into this many devices",
    "distribute.max_worker_delay_secs": "ps workers: cap on the start delay",
    "session.intra_op_threads": "threads inside one op; 0: TensorFlow picks",
    "session.inter_op_threads": "ops run at once; 0: TensorFlow picks",
    "session.gpu_memory_fraction": "> 0: cap each GPU's memory at this share",
    "session.allow_growth": "take GPU memory as needed rather than all",
    "session.log_device_placement": "log the device of every op",
    "session.xla": "compile with XLA (helps on GPUs)",
    "warm_start.include": "--warm_start_from: regexes of variables to load",
    "warm_start.exclude": "--warm_start_from: regexes of variables to skip",
    "warm_start.rename": "checkpoint_prefix:model_prefix pairs",
    "warm_start.ignore_missing": "keep fresh values for variables not found",
    "warm_start.values_npz": "initial values from an .npz keyed by name",
}


def type_words(cfg: config_lib.ExperimentConfig, key: str) -> str:
  """`int`, `list[str]`, ...: the declared type of field `key`."""
  section, _, name = key.rpartition(".")
  owner = getattr(cfg, section) if section else cfg
  hint = typing.get_type_hints(type(owner))[name]
  return getattr(hint, "__name__", None) if typing.get_origin(hint) is None \
      else str(hint).replace("typing.", "")


def list_params(cfg: config_lib.ExperimentConfig) -> list[str]:
  """`--list_params`' lines: `key = value  (type; allowed values) meaning`."""
  lines = []
  for key in config_lib.all_keys(cfg):
    value = _value(cfg, key)
    allowed = config_lib.choices(key)
    kind = type_words(cfg, key) + (f": {' | '.join(allowed)}" if allowed else "")
    lines.append(f"{key} = {value!r}  ({kind}) {MEANINGS.get(key, '')}".rstrip())
  return lines


def changes(base: config_lib.ExperimentConfig,
            cfg: config_lib.ExperimentConfig) -> str:
  """`resnet_sgd with train.steps=20, ...`: where `cfg` differs from `base`."""
  changed = [f"{key}={_value(cfg, key)!r}" for key in config_lib.all_keys(cfg)
             if key not in ("name", "description") and
             _value(cfg, key) != _value(base, key)]
  return f"{base.name} with {', '.join(changed)}" if changed else \
      f"{base.name} as defined"


def _value(cfg: config_lib.ExperimentConfig, key: str):
  return config_lib.get(cfg, key) if "." in key else getattr(cfg, key)
