"""ResNet-110 v1 on CIFAR-10, SGD with a 0.01 warm-up (He et al. 2016).

Command:
  python -m estimator_cifar.run --experiment=resnet110_sgd

resnet_sgd's recipe with depth 110 (n = 18, 1.7M parameters). At this depth
0.1 from the start fails to converge, so He et al. start at learning rate 0.01
"until the training error is below 80% (about 400 iterations)", then go back
to 0.1 and follow the usual schedule. That is a piecewise schedule here:
multipliers 0.1, 1, 0.1, 0.01 with boundaries at epochs 1.024 (= 400 steps of
batch 128 on 50k images), 91, 136. The published accuracy (He et al. 2016,
Table 6) is in docs/results.md.
Runtime: see docs/design.md, "Experiment costs" (measured, with the command).
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.load_experiment("resnet_sgd")
  cfg.model.depth = 110
  cfg.schedule.boundaries_epochs = [400 * 128 / 50000, 91.0, 136.0]
  cfg.schedule.multipliers = [0.1, 1.0, 0.1, 0.01]
  return cfg
