"""WRN-28-10 with dropout 0.3 on CIFAR-10, Nesterov SGD, 200 epochs.

Command:
  python -m estimator_cifar.run --experiment=wrn28_10_sgd

Zagoruyko & Komodakis 2016, "Wide Residual Networks", the widest recipe here
and the paper's best CIFAR-10 network: pre-activation blocks, depth 28
(n = 4), widths 160/320/640 (k = 10), 36.5M parameters, dropout 0.3 between
the two convolutions of a block. Batch 128, Nesterov momentum 0.9, weight
decay 5e-4 on every parameter (their Torch code decays all of them), learning
rate 0.1 x0.2 at epochs 60, 120 and 160 of 200. The paper pads with
reflections before the random crop; here the pad is zeros. The published
accuracy, with and without dropout, is in docs/results.md.
Runtime: see docs/design.md, "Experiment costs" (measured, with the command).
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.load_experiment("resnet_sgd")
  cfg.model.name = "wide_resnet"
  cfg.model.depth = 28
  cfg.model.width = 10
  cfg.model.dropout = 0.3
  cfg.train.epochs = 200
  cfg.train.weight_decay = 5e-4
  cfg.train.weight_decay_on = "all"
  cfg.optimizer.name = "nesterov"
  cfg.schedule.boundaries_epochs = [60.0, 120.0, 160.0]
  cfg.schedule.multipliers = [1.0, 0.2, 0.04, 0.008]
  return cfg
