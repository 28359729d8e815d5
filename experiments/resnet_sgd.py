"""ResNet-20 v1 on CIFAR-10, momentum SGD, 182 epochs (He et al. 2016): 91.25%.

Command:
  python -m estimator_cifar.run --experiment=resnet_sgd

Recipe from "Deep Residual Learning for Image Recognition" (He, Zhang, Ren, Sun;
CVPR 2016, section 4.2): batch 128, momentum 0.9, weight decay 1e-4 on the
kernels, learning rate 0.1 divided by 10 at 32k and 48k iterations and stopped
at 64k, i.e. epochs 91 and 136 of 182 of their 45k-image training split (352
steps per epoch). Here, as in tf-models, the epochs are kept and the full 50k
images are used: 391 steps per epoch, boundaries at steps 35547 and 53125, end
at 71094. Pad-4 random crop and horizontal flip, per-image standardization
(the paper subtracts the pixel mean). The learning rate scales as
0.1 x batch / 128 when the batch changes. Reported test error 8.75% (accuracy
91.25%) for ResNet-20. An exponential moving average of the weights is kept
(decay 0.9999) for export and optional EMA eval; eval uses the raw weights as
the paper did.
Runtime: about 7 h on a 2-core CPU (64k steps), ~30 min on one modern GPU.
"""

from estimator_cifar import config as config_lib


def get_config() -> config_lib.ExperimentConfig:
  cfg = config_lib.ExperimentConfig()
  cfg.model.name = "resnet"
  cfg.model.depth = 20
  cfg.model.version = 1
  cfg.data.name = "cifar10"
  cfg.data.augment = ["pad_crop", "flip", "standardize"]
  cfg.train.batch_size = 128
  cfg.train.epochs = 182
  cfg.train.weight_decay = 1e-4
  cfg.optimizer.name = "momentum"
  cfg.optimizer.momentum = 0.9
  cfg.optimizer.learning_rate = 0.1
  cfg.optimizer.scale_lr_with_batch = True
  cfg.schedule.name = "piecewise"
  cfg.schedule.boundaries_epochs = [91.0, 136.0]
  cfg.schedule.multipliers = [1.0, 0.1, 0.01]
  cfg.ema.decay = 0.9999
  cfg.ema.eval_with_ema = False
  return cfg
