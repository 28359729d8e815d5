"""Network registry: `build(cfg.model, num_classes)` -> fn(images, training) -> logits.

A network is `net(model_cfg, num_classes) -> fn(images, training) -> logits`,
named by `model.name`. The built-ins are imported on first use, so that
validating a name or registering one needs no TensorFlow; a user's experiment
file (or a package it imports) adds its own without editing this package:

  from estimator_cifar.model.nets import register_network

  @register_network("mynet")
  def mynet(cfg, num_classes):
    ...

Every model is built inside a variable scope named after `model.name`, so
checkpoints read `resnet/stage1/block0/conv1/kernel` and so on. The ReLU
outputs of each call land in GraphKeys.ACTIVATIONS, for the sparsity and
activation summaries (summaries.py), without each model having to report them.
"""

import importlib
from collections.abc import Callable

from estimator_cifar.errors import ConfigError

# Op types whose outputs count as a layer's activations.
ACTIVATION_OPS = ("Relu", "Relu6", "Elu", "Selu")

# The built-in networks: name -> (module in this package, function).
BUILTIN = {"resnet": ("resnet", "resnet"),
           "wide_resnet": ("resnet", "wide_resnet"),
           "convnet": ("convnet", "convnet"), "tiny": ("tiny", "tiny"),
           "airbench": ("airbench", "airbench")}
_registered: dict[str, Callable] = {}


def register_network(name: str) -> Callable[[Callable], Callable]:
  """A decorator that makes `model.name=<name>` build the decorated network.

  Raises:
    ConfigError: `name` is a built-in's, or another function's already.
  """

  def register(net: Callable) -> Callable:
    known = _registered.get(name)
    # The same experiment file loaded twice registers its function again.
    same = known is not None and known.__qualname__ == net.__qualname__ and \
        known.__module__ == net.__module__
    if name in BUILTIN or (known is not None and not same):
      raise ConfigError(f"register_network('{name}'): the name is taken by "
                        f"{'a built-in network' if name in BUILTIN else known}; "
                        "choose another name.")
    _registered[name] = net
    return net

  return register


def names() -> tuple[str, ...]:
  """Every network `model.name` may name: the built-ins, then registered ones."""
  return tuple(BUILTIN) + tuple(_registered)


def network(name: str) -> Callable:
  """The function registered (or built in) under `name`."""
  if name in _registered:
    return _registered[name]
  module, function = BUILTIN[name]
  return getattr(importlib.import_module(f"{__name__}.{module}"), function)


def build(cfg, num_classes: int):
  """Returns `fn(images, training) -> float32 logits [N, num_classes]` for
  `cfg` (a config.ModelConfig)."""
  import tensorflow as tf  # Here: registering a network needs no TensorFlow.
  net = network(cfg.name)(cfg, num_classes)

  def fn(images, training):
    graph = tf.compat.v1.get_default_graph()
    first = len(graph.get_operations())
    with tf.compat.v1.variable_scope(cfg.name):
      logits = net(images, training)
    for op in graph.get_operations()[first:]:
      if op.type in ACTIVATION_OPS:
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ACTIVATIONS,
                                       op.outputs[0])
    return logits

  return fn
