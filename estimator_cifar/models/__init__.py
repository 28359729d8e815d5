"""Model registry: `build(cfg.model, num_classes)` -> fn(images, training) -> logits.

Every model is built inside a variable scope named after `model.name`, so
checkpoints read `resnet/stage1/block0/conv1/kernel` and so on.
"""

import tensorflow as tf

from estimator_cifar.config import ModelConfig
from estimator_cifar.models.convnet import convnet
from estimator_cifar.models.resnet import resnet, wide_resnet
from estimator_cifar.models.tiny import tiny

MODELS = {"resnet": resnet, "wide_resnet": wide_resnet, "convnet": convnet,
          "tiny": tiny}


def build(cfg: ModelConfig, num_classes: int):
  """Returns `fn(images, training) -> float32 logits [N, num_classes]`."""
  network = MODELS[cfg.name](cfg, num_classes)

  def fn(images, training):
    with tf.compat.v1.variable_scope(cfg.name):
      return network(images, training)

  return fn
