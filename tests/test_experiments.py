"""Every experiment in experiments/ loads, validates, documents itself and builds."""

import re

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar import config as config_lib, experiment_files
from estimator_cifar.model import nets
from estimator_cifar.data import cifar
from tests.testutil import resnet_params

v1 = tf.compat.v1

EXPERIMENTS = sorted(config_lib.list_experiments())
# The recipes of published papers; the registry may hold more. Those in TIMED
# state their runtime on a "Runtime:" line.
TIMED = {"resnet56_sgd", "resnet110_sgd", "resnet20_v2_sgd", "wrn28_10_sgd",
         "resnet_adam", "cifar100_resnet_sgd"}
REQUIRED = {"resnet_sgd", "resnet56_sgd", "resnet110_sgd", "resnet20_v2_sgd",
            "wrn28_10_sgd", "cifar10_tutorial", "resnet_adam",
            "cifar100_resnet_sgd"}


# Millions of trainable parameters, as the papers state them.
PAPER_PARAMS_M = {"resnet_sgd": 0.27, "resnet56_sgd": 0.86, "resnet110_sgd": 1.7,
                  "resnet20_v2_sgd": 0.27, "wrn28_10_sgd": 36.5}


def test_registry_has_the_named_experiments():
  assert REQUIRED <= set(EXPERIMENTS)


def _num_classes(cfg) -> int:
  spec = cifar.DATASETS[cfg.data.name]
  return spec.num_classes[spec.label_kind(cfg.data.label)]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_validates_documents_and_builds(name):
  cfg = config_lib.validate(config_lib.load_experiment(name))
  assert cfg.name == name
  doc = open(experiment_files.find(name)).read()
  summary = config_lib.list_experiments()[name]
  assert summary and cfg.description == summary
  assert f"python -m estimator_cifar.run --experiment={name}" in doc
  # Figures live in docs/results.md: the docstring links there, states none.
  assert not re.search(r"\d\.\d+%", doc), "the docstring states a figure"
  assert "docs/results.md" in doc
  assert "Command:" in doc
  assert name not in TIMED or "Runtime:" in doc
  size = cfg.data.image_size
  classes = _num_classes(cfg)
  with tf.Graph().as_default():  # The inference graph: the same variables.
    logits = nets.build(cfg.model, classes)(
        v1.placeholder(tf.float32, [None, size, size, 3]), False)
    assert logits.shape.as_list() == [None, classes]
    params = sum(int(np.prod(v.shape.as_list())) for v in v1.trainable_variables())
  if name in PAPER_PARAMS_M:  # The built network has the paper's size.
    millions = PAPER_PARAMS_M[name]
    assert round(params / 1e6, 2 if millions < 1 else 1) == millions
  m = cfg.model
  if m.name == "resnet":
    assert params == resnet_params((m.depth - 2) // 6, (16, 32, 64), m.version,
                                   classes)
  elif m.name == "wide_resnet":
    assert params == resnet_params((m.depth - 4) // 6,
                                   tuple(16 * m.width * k for k in (1, 2, 4)),
                                   2, classes)


@pytest.mark.parametrize("name,depth,version", [
    ("resnet_sgd", 20, 1), ("resnet56_sgd", 56, 1), ("resnet110_sgd", 110, 1),
    ("resnet20_v2_sgd", 20, 2), ("wrn28_10_sgd", 28, 2)])
def test_recipes_are_the_papers_models(name, depth, version):
  # Their sizes are checked on the built networks, against PAPER_PARAMS_M.
  cfg = config_lib.load_experiment(name)
  assert cfg.model.depth == depth
  if cfg.model.name == "resnet":
    assert cfg.model.version == version
  else:
    assert (cfg.model.width, cfg.model.dropout) == (10, 0.3)


def _changed_fields(name: str, base: str) -> dict:
  """The config fields ("section.key": value) where `name` differs from `base`."""
  base_cfg = config_lib.load_experiment(base).to_dict()
  cfg = config_lib.load_experiment(name).to_dict()
  return {f"{s}.{k}": v for s, sec in cfg.items() if isinstance(sec, dict)
          for k, v in sec.items() if base_cfg[s][k] != v}


def test_variants_change_only_what_they_say():
  changed = {name: set(_changed_fields(name, "resnet_sgd"))
             for name in ("resnet56_sgd", "resnet110_sgd", "resnet20_v2_sgd")}
  assert changed["resnet56_sgd"] == {"model.depth"}
  assert changed["resnet20_v2_sgd"] == {"model.version"}
  assert changed["resnet110_sgd"] == {"model.depth", "schedule.boundaries_epochs",
                                      "schedule.multipliers"}
  wrn = config_lib.load_experiment("wrn28_10_sgd")
  assert (wrn.optimizer.name, wrn.train.weight_decay, wrn.train.epochs) == \
      ("nesterov", 5e-4, 200)
  assert wrn.schedule.multipliers == pytest.approx([1, 0.2, 0.04, 0.008])
  adam = config_lib.load_experiment("resnet_adam")
  assert (adam.optimizer.name, adam.schedule.name, adam.train.weight_decay) == \
      ("adamw", "cosine", 0.0)
  c100 = config_lib.load_experiment("cifar100_resnet_sgd")
  assert (c100.data.name, c100.data.label) == ("cifar100", "fine")


def test_the_long_real_subset_recipe_adds_mixup_epochs_views_and_wide_ranges():
  assert _changed_fields("real_subset_long", "real_subset") == {
      "train.mixup_alpha": 0.5, "train.epochs": 245, "eval.tta": "flip_translate",
      "data.trivial_augment_ranges": "wide"}
