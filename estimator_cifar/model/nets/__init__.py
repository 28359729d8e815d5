"""Model registry: `build(cfg.model, num_classes)` -> fn(images, training) -> logits.

Every model is built inside a variable scope named after `model.name`, so
checkpoints read `resnet/stage1/block0/conv1/kernel` and so on. The ReLU
outputs of each call land in GraphKeys.ACTIVATIONS, for the sparsity and
activation summaries (summaries.py), without each model having to report them.
"""

import tensorflow as tf

from estimator_cifar.config import ModelConfig
from estimator_cifar.model.nets.airbench import airbench
from estimator_cifar.model.nets.convnet import convnet
from estimator_cifar.model.nets.resnet import resnet, wide_resnet
from estimator_cifar.model.nets.tiny import tiny

# Op types whose outputs count as a layer's activations.
ACTIVATION_OPS = ("Relu", "Relu6", "Elu", "Selu")

MODELS = {"resnet": resnet, "wide_resnet": wide_resnet, "convnet": convnet,
          "tiny": tiny, "airbench": airbench}


def build(cfg: ModelConfig, num_classes: int):
  """Returns `fn(images, training) -> float32 logits [N, num_classes]`."""
  network = MODELS[cfg.name](cfg, num_classes)

  def fn(images, training):
    graph = tf.compat.v1.get_default_graph()
    first = len(graph.get_operations())
    with tf.compat.v1.variable_scope(cfg.name):
      logits = network(images, training)
    for op in graph.get_operations()[first:]:
      if op.type in ACTIVATION_OPS:
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ACTIVATIONS,
                                       op.outputs[0])
    return logits

  return fn
