"""Graphs built from the code a process loaded, never from its files on disk.

AutoGraph converts each function that tf.data maps (or tf.map_fn runs) by
re-reading its source file, the first time a process builds a graph with it.
A long job builds new graphs long after it started (train_and_eval's first
evaluation, the first checkpoint continuous_eval sees, the first export), so
an edit to the package's files in between (a git pull, an edit in the same
checkout) would be read at the old line numbers of the code in memory, which
then point at other code: the job dies there. Nothing here needs AutoGraph
(no Python control flow on tensors), so the functions the Estimator calls to
build graphs go without it.
"""

import inspect


def as_loaded(fn):
  """`fn` with AutoGraph off in every graph it builds (tf.data maps, tf.map_fn)."""
  import tensorflow as tf  # Deferred: config errors must not wait for TF.
  wrapper = tf.autograph.experimental.do_not_convert(fn)
  # The Estimator reads an input_fn's or model_fn's arguments to decide what
  # to pass; the wrapper's own are *args, **kwargs.
  wrapper.__signature__ = inspect.signature(fn)
  return wrapper
