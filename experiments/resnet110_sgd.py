"""ResNet-110 v1 on CIFAR-10, SGD with a 0.01 warm-up (He et al.): 93.39% mean.

Command:
  python -m estimator_cifar.run --experiment=resnet110_sgd

resnet_sgd's recipe with depth 110 (n = 18, 1.7M parameters). For this depth
He et al. start at learning rate 0.01 "until the training error is below 80%
(about 400 iterations)", then go back to 0.1 and follow the usual schedule.
That is a piecewise schedule here: multipliers 0.1, 1, 0.1, 0.01 with
boundaries at epochs 1.024 (= 400 steps of batch 128 on 50k images), 91, 136.
Literature: 6.43% best, 6.61 +- 0.16% mean of 5 runs, i.e. 93.57% / 93.39%
(He et al. 2016, "Deep Residual Learning for Image Recognition", Table 6).
Runtime: see docs/design.md, "Experiment costs" (measured, with the command).
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.load_experiment("resnet_sgd")
  cfg.model.depth = 110
  cfg.schedule.boundaries_epochs = [400 * 128 / 50000, 91.0, 136.0]
  cfg.schedule.multipliers = [0.1, 1.0, 0.1, 0.01]
  return cfg
