"""ResNet-20 v2 (pre-activation) on CIFAR-10, momentum SGD, 182 epochs: ~91-92%.

Command:
  python -m estimator_cifar.run --experiment=resnet20_v2_sgd

resnet_sgd's recipe with the pre-activation block of He et al. 2016b
("Identity Mappings in Deep Residual Networks"): BN-ReLU-conv twice, identity
shortcut added without a ReLU after it, one BN-ReLU before the pooling.
Literature: that paper reports no 20-layer figure. Its pre-activation
ResNet-110 reaches 6.37% error (93.63%) against 6.61% for v1 (Table 3), so
expect about ResNet-20 v1's 91.25% (He et al. 2016a, Table 6), give or take a
few tenths.
Runtime: see docs/design.md, "Experiment costs" (measured, with the command).
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.load_experiment("resnet_sgd")
  cfg.model.version = 2
  return cfg
