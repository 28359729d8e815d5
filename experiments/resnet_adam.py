"""ResNet-20 v1 on CIFAR-10, AdamW with cosine decay: expect ~90-91%, below SGD.

Command:
  python -m estimator_cifar.run --experiment=resnet_adam
  (plain Adam with L2 instead: --params_override=optimizer.name=adam,
   optimizer.weight_decay=0,train.weight_decay=1e-4)

resnet_sgd's model, data and length (182 epochs, batch 128) with AdamW
(Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"): Adam
lr 1e-3 (x batch / 128), betas 0.9/0.999, a 1-epoch linear warm-up, then
cosine decay to 0 over the run. The decay is decoupled and applied to the
kernels only: each step w <- w - 2e-4 * (lr / 1e-3) * w, their normalized
weight decay 0.05 converted to this run's length (0.05 * sqrt(128 / (50000 *
182))); train.weight_decay (the L2 term) is 0.
What to expect, honestly: no paper reports this exact recipe. Adaptive methods
usually land 1-3 points below momentum SGD on CIFAR ResNets (Wilson et al.
2017, "The Marginal Value of Adaptive Gradient Methods"); decoupling the
weight decay and annealing the rate closes much of that gap (Loshchilov &
Hutter 2019). So expect roughly 90-91% against resnet_sgd's 91.25%; this
package has not measured it (no GPU was available to run it to the end).
Runtime: see docs/design.md, "Experiment costs" (measured, with the command).
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.load_experiment("resnet_sgd")
  cfg.train.weight_decay = 0.0
  cfg.optimizer.name = "adamw"
  cfg.optimizer.learning_rate = 1e-3
  cfg.optimizer.epsilon = 1e-8
  cfg.optimizer.weight_decay = 2e-4
  cfg.schedule.name = "cosine"
  cfg.schedule.warmup_epochs = 1.0
  cfg.schedule.boundaries_epochs = []
  cfg.schedule.multipliers = []
  return cfg
