"""The classic TensorFlow CIFAR-10 tutorial convnet and recipe.

Command:
  python -m estimator_cifar.run --experiment=cifar10_tutorial

Reproduces tensorflow/models tutorials/image/cifar10 (cifar10.py,
cifar10_input.py), the recipe many Estimator users started from: random 24x24
crops, horizontal flip, random brightness (max delta 63/255) and contrast
(0.2..1.8), per-image standardization; conv5x5-64, max-pool, LRN, conv5x5-64,
LRN, max-pool, FC 384, FC 192, linear; weight decay 0.004 on the two FC layers
only; SGD at 0.1 decayed x0.1 every 350 epochs (staircase); moving average of
the weights with decay 0.9999, used for eval. The tutorial's reported accuracy
is in docs/results.md.
Runtime: not measured yet; docs/design.md, "Experiment costs", gives the command.
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.ExperimentConfig()
  cfg.model.name = "convnet"
  cfg.data.image_size = 24
  cfg.data.augment = ["random_crop", "flip", "brightness", "contrast",
                      "standardize"]
  cfg.train.steps = 100000
  cfg.train.weight_decay = 0.004
  cfg.train.weight_decay_on = "dense_kernels"
  cfg.optimizer.name = "sgd"
  # The defaults' decay (x0.1 every 350 epochs, staircase) is the tutorial's.
  cfg.schedule.name = "exponential"
  cfg.ema.eval_with_ema = True
  cfg.train.precision = config_lib.PRECISION_AUTO  # As resnet_sgd, for the same reason.
  return cfg
