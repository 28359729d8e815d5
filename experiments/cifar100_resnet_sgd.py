"""ResNet-110 v1 on CIFAR-100 (fine labels), Nesterov SGD, 500 epochs.

Command:
  python -m estimator_cifar.run --experiment=cifar100_resnet_sgd
  (coarse labels, 20 classes: --params_override=data.label=coarse)

The constant-depth ResNet-110 baseline of Huang et al. 2016 ("Deep Networks
with Stochastic Depth"), trained as they trained it, so that its result can be
set beside the paper's: batch 128, Nesterov momentum 0.9, weight decay 1e-4,
learning rate 0.1 divided by 10 at epochs 250 and 375 of 500, pad-4 crop and
flip. Data: the CIFAR-100 binary layout (cifar-100-binary/train.bin,
test.bin; coarse byte, then fine byte), 100 fine classes; downloaded on first
run like CIFAR-10. The published accuracy is in docs/results.md.
Runtime: see docs/design.md, "Experiment costs" (measured, with the command).
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.load_experiment("resnet_sgd")
  cfg.data.name = "cifar100"
  cfg.data.label = "fine"
  cfg.model.depth = 110
  cfg.train.epochs = 500
  cfg.optimizer.name = "nesterov"
  cfg.schedule.boundaries_epochs = [250.0, 375.0]
  cfg.schedule.multipliers = [1.0, 0.1, 0.01]
  return cfg
