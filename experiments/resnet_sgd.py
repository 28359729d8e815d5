"""ResNet-20 v1 on CIFAR-10, momentum SGD, 182 epochs (He et al. 2016).

Command:
  python -m estimator_cifar.run --experiment=resnet_sgd

Recipe from "Deep Residual Learning for Image Recognition" (He, Zhang, Ren, Sun;
CVPR 2016, section 4.2), the baseline the other experiments vary: batch 128,
momentum 0.9, weight decay 1e-4 on the kernels, learning rate 0.1 divided by
10 at 32k and 48k iterations and stopped at 64k, i.e. epochs 91 and 136 of 182
of their 45k-image training split (352 steps per epoch). Here, as in
tf-models, the epochs are kept and the full 50k images are used: 391 steps
per epoch, boundaries at steps 35547 and 53125, end at 71094. Pad-4 random
crop and horizontal flip, per-image standardization (the paper subtracts the
pixel mean). The learning rate scales as 0.1 x batch / 128 when the batch
changes. An exponential moving average of the weights is kept (decay 0.9999)
for export and optional EMA eval; eval uses the raw weights as the paper did.
Most of this is the config's defaults; only the schedule, the batch
scaling and train.precision=auto (which every built-in experiment inherits)
are set here. The published accuracy is in docs/results.md.
Runtime: not measured yet; docs/design.md, "Experiment costs", gives the command.
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.ExperimentConfig()
  cfg.optimizer.scale_lr_with_batch = True
  cfg.schedule.name = "piecewise"
  cfg.schedule.boundaries_epochs = [91.0, 136.0]
  cfg.schedule.multipliers = [1.0, 0.1, 0.01]
  # The precision this machine trains fastest (mixed_bfloat16 where it clearly
  # beats float32): in it the real-photograph recipes scored within the
  # spread of their float32 runs.
  cfg.train.precision = config_lib.PRECISION_AUTO
  return cfg
