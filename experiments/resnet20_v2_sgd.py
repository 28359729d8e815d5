"""ResNet-20 v2 (pre-activation) on CIFAR-10, momentum SGD, 182 epochs.

Command:
  python -m estimator_cifar.run --experiment=resnet20_v2_sgd

resnet_sgd's recipe with the pre-activation block of He et al. 2016b
("Identity Mappings in Deep Residual Networks"): BN-ReLU-conv twice, identity
shortcut added without a ReLU after it, one BN-ReLU before the pooling. It
isolates the block's effect: only model.version differs from resnet_sgd. The
paper reports no 20-layer figure; docs/results.md says what to expect.
Runtime: see docs/design.md, "Experiment costs" (measured, with the command).
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.load_experiment("resnet_sgd")
  cfg.model.version = 2
  return cfg
