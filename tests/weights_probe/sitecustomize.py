"""Makes every training task print a checksum of its weights (tests only).

tests/test_cluster.py puts this folder on PYTHONPATH of the tasks a launcher
starts; Python imports `sitecustomize` at start-up. When the run imports
estimator_cifar.engine.hooks, `train_hooks` gains a hook that prints, after
every EVERY-th step,

  WEIGHTS step=N sum=S

with S the float64 sum of every trainable variable as this task reads it.
Synchronous replicas hold the same weights after each step, so their lines
agree; a task that trained on its own would drift apart at once.
"""

import importlib.abc
import importlib.machinery
import sys

TARGET = "estimator_cifar.engine.hooks"
EVERY = 10


def _add_weights_hook(hooks_module) -> None:
  import tensorflow as tf
  v1 = tf.compat.v1

  class WeightsHook(v1.train.SessionRunHook):

    def begin(self):
      self._step = v1.train.get_global_step()
      self._sum = tf.add_n([tf.reduce_sum(tf.cast(v, tf.float64))
                            for v in v1.trainable_variables()])

    def after_run(self, run_context, run_values):
      step, total = run_context.session.run([self._step, self._sum])
      if step % EVERY == 0:
        print(f"WEIGHTS step={step} sum={total!r}", flush=True)

  real = hooks_module.train_hooks

  def train_hooks(*args, **kwargs):
    return list(real(*args, **kwargs)) + [WeightsHook()]

  hooks_module.train_hooks = train_hooks


class _PatchOnImport(importlib.abc.MetaPathFinder):
  """Finds TARGET the normal way and patches it right after it executes."""

  def find_spec(self, name, path, target=None):
    if name != TARGET:
      return None
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    real_exec = spec.loader.exec_module

    def exec_module(module):
      real_exec(module)
      _add_weights_hook(module)

    spec.loader.exec_module = exec_module
    return spec


sys.meta_path.insert(0, _PatchOnImport())
