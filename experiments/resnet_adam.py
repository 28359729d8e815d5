"""ResNet-20 v1 on CIFAR-10, AdamW with cosine decay, beside resnet_sgd's SGD.

Command:
  python -m estimator_cifar.run --experiment=resnet_adam
  (plain Adam with L2 instead: --params_override=optimizer.name=adam,
   optimizer.weight_decay=0,train.weight_decay=1e-4)

resnet_sgd's model, data and length (182 epochs, batch 128) with AdamW
(Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"), for
users who compare an adaptive optimizer with momentum SGD: Adam lr 1e-3
(x batch / 128), betas 0.9/0.999, a 1-epoch linear warm-up, then cosine decay
to 0 over the run. The decay is decoupled and applied to the kernels only:
each step w <- w - 2e-4 * (lr / 1e-3) * w, their normalized weight decay 0.05
converted to this run's length (0.05 * sqrt(128 / (50000 * 182)));
train.weight_decay (the L2 term) is 0. No paper reports this exact recipe;
docs/results.md says what the literature leads one to expect.
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
