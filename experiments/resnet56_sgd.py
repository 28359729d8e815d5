"""ResNet-56 v1 on CIFAR-10, momentum SGD, 182 epochs (He et al. 2016).

Command:
  python -m estimator_cifar.run --experiment=resnet56_sgd

resnet_sgd's recipe (He et al. 2016, section 4.2) with depth 56 (n = 9 blocks
per stage, 0.86M parameters): batch 128, momentum 0.9, weight decay 1e-4 on the
kernels, learning rate 0.1, x0.1 at epochs 91 and 136, 182 epochs; the same
schedule as ResNet-20, so the two differ in depth alone. The published
accuracy (He et al. 2016, Table 6) is in docs/results.md.
Runtime: see docs/design.md, "Experiment costs" (measured, with the command).
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.load_experiment("resnet_sgd")
  cfg.model.depth = 56
  return cfg
