"""Config: experiment loading, typed overrides, validation, config.json round trip."""

import dataclasses
import json

import pytest

from estimator_cifar import config as config_lib
from estimator_cifar.errors import ConfigError

PUBLIC_NAMES = """model.name model.depth data.name data.shuffle_buffer
train.batch_size train.epochs train.steps train.weight_decay optimizer.name
optimizer.learning_rate optimizer.momentum schedule.name ema.decay
ema.eval_with_ema checkpoint.save_steps checkpoint.save_secs checkpoint.keep_max
checkpoint.keep_every_n_hours summary.save_steps eval.batch_size
eval.throttle_secs""".split()


def test_public_names_exist():
  keys = set(config_lib.all_keys(config_lib.ExperimentConfig()))
  assert set(PUBLIC_NAMES) <= keys


def test_every_experiment_loads_and_validates():
  names = config_lib.list_experiments()
  assert {"resnet_sgd", "cifar10_tutorial"} <= set(names)
  for name, summary in names.items():
    cfg = config_lib.validate(config_lib.load_experiment(name))
    assert cfg.name == name and cfg.description == summary
    assert summary, f"{name} needs a one-line docstring summary"


def test_resnet_sgd_recipe():
  cfg = config_lib.load_experiment("resnet_sgd")
  assert (cfg.model.name, cfg.model.depth, cfg.model.version) == ("resnet", 20, 1)
  assert cfg.optimizer.name == "momentum" and cfg.optimizer.momentum == 0.9
  assert cfg.optimizer.scale_lr_with_batch and cfg.train.batch_size == 128
  assert cfg.schedule.boundaries_epochs == [91.0, 136.0]
  assert cfg.schedule.multipliers == [1.0, 0.1, 0.01] and cfg.train.epochs == 182
  assert cfg.data.augment == ["pad_crop", "flip", "standardize"]


def test_overrides_are_typed():
  cfg = config_lib.resolve("resnet_sgd", [
      "train.steps=12,optimizer.learning_rate=0.05,ema.eval_with_ema=true",
      "schedule.boundaries_epochs=1,2.5,data.augment=[flip,standardize]",
      "train.gradient_multipliers=logits/.*:0.1,conv:2"])
  assert cfg.train.steps == 12 and isinstance(cfg.train.steps, int)
  assert cfg.optimizer.learning_rate == 0.05
  assert cfg.ema.eval_with_ema is True
  assert cfg.schedule.boundaries_epochs == [1.0, 2.5]
  assert cfg.data.augment == ["flip", "standardize"]
  assert cfg.train.gradient_multipliers == {"logits/.*": 0.1, "conv": 2.0}


def test_later_override_wins():
  cfg = config_lib.resolve("resnet_sgd", ["train.steps=5", "train.steps=7"])
  assert cfg.train.steps == 7


@pytest.mark.parametrize("override, words", [
    ("train.no_such_key=1", ["train.no_such_key", "Unknown"]),
    ("train.stepz=1", ["train.stepz", "train.steps"]),
    ("train.steps=abc", ["train.steps", "integer", "abc"]),
    ("ema.eval_with_ema=maybe", ["ema.eval_with_ema", "true or false"]),
    ("optimizer.learning_rate=fast", ["optimizer.learning_rate", "number"]),
    ("model=resnet", ["model"]),
    ("=3", ["Malformed"]),
    ("steps", ["Malformed"]),
])
def test_bad_overrides_are_named(override, words):
  with pytest.raises(ConfigError) as err:
    config_lib.resolve("resnet_sgd", [override])
  for word in words:
    assert word in str(err.value)
  assert "\n" not in str(err.value)


@pytest.mark.parametrize("override, words", [
    ("model.name=vgg", ["model.name", "resnet", "tiny"]),
    ("model.depth=21", ["6n+2"]),
    ("optimizer.name=lion", ["optimizer.name", "adamw"]),
    ("train.batch_size=0", ["train.batch_size", "positive"]),
    ("data.augment=mixup", ["mixup", "cutout"]),
    ("schedule.multipliers=1", ["piecewise", "boundaries"]),
])
def test_validation_lists_the_choices(override, words):
  with pytest.raises(ConfigError) as err:
    config_lib.resolve("resnet_sgd", [override])
  for word in words:
    assert word in str(err.value)


def test_unknown_experiment_lists_known_ones():
  with pytest.raises(ConfigError) as err:
    config_lib.load_experiment("no_such_exp")
  assert "no_such_exp" in str(err.value) and "resnet_sgd" in str(err.value)


def test_experiment_by_path(tmp_path):
  path = tmp_path / "mine.py"
  path.write_text('"""My variant."""\nfrom estimator_cifar import config\n'
                  "def get_config():\n"
                  "  cfg = config.load_experiment('resnet_sgd')\n"
                  "  cfg.model.depth = 32\n  return cfg\n")
  cfg = config_lib.load_experiment(str(path))
  assert cfg.model.depth == 32
  # Named after its own file and docstring, not the base it loaded.
  assert (cfg.name, cfg.description) == ("mine", "My variant.")


def test_config_json_round_trip():
  cfg = config_lib.resolve("cifar10_tutorial", ["train.steps=3"])
  text = cfg.to_json()
  again = config_lib.from_dict(json.loads(text))
  assert dataclasses.asdict(again) == dataclasses.asdict(cfg)
  assert again.to_json() == text and json.loads(text)["train"]["steps"] == 3
