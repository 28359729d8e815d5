"""Gradient clipping on one device and mirrored on two logical CPUs; prints JSON.

Run in its own process by tests/test_mirrored_clip.py (logical CPU devices
must be set before TensorFlow initialises):

  python -m tests.clip_probe DATA_DIR WORK_DIR

The tiny net is swapped for the same layers without batch norm, so that two
replicas of 8 images compute exactly the global batch's gradient of 16 (batch
norm would normalise each half with its own moments). Both runs train 2 steps
with the real model_fn and Estimator from one step-0 checkpoint, with
`train.clip_global_norm` well below the gradient norm. Printed: the logged
`gradients/global_norm` per step and the variables at step 2, per run.
"""

import json
import os
import shutil
import sys

os.environ.pop("TF_CONFIG", None)

from tests import testutil  # noqa: E402

CLIP = 0.05
STEPS = 2
OVERRIDES = ["data.augment=standardize", "data.shuffle_buffer=1",
             f"train.clip_global_norm={CLIP}", "checkpoint.save_steps=1",
             "summary.save_steps=1", "log.every_steps=1",
             f"train.steps={STEPS}"]
MIRRORED = ["distribute.strategy=mirrored", "distribute.num_cpu_devices=2"]


def no_bn_tiny(cfg, num_classes):
  """tiny's convolutions and linear layer, without batch norm."""
  import tensorflow as tf
  from estimator_cifar.model.nets import layers

  def fn(images, training):
    del training
    x = images
    for i, filters in enumerate((8, 16)):
      x = tf.nn.relu(layers.conv2d(x, filters, 3, 2, "conv" + ("" if i == 0
                                                               else str(i + 1))))
    return layers.dense(tf.cast(layers.global_avg_pool(x), tf.float32),
                        num_classes, "logits")

  return fn


def main(data_dir: str, work: str) -> dict:
  single_cfg = testutil.tiny_config(*OVERRIDES)
  mirrored_cfg = testutil.tiny_config(*OVERRIDES, *MIRRORED)
  from estimator_cifar.engine import distribute
  distribute.configure_devices(mirrored_cfg)  # Before TensorFlow starts.
  import tensorflow as tf
  from estimator_cifar.data.input_pipeline import make_input_fn
  from estimator_cifar.engine import estimator_setup
  from estimator_cifar.model import nets
  nets.network = lambda name: no_bn_tiny  # "tiny" without batch norm.

  plan = estimator_setup.make_plan(single_cfg, data_dir)
  init = os.path.join(work, "init")
  testutil.write_initial_checkpoint(single_cfg, plan, init)
  out = {"replicas": len(distribute.local_devices(mirrored_cfg))}
  for name, cfg in (("single", single_cfg), ("mirrored", mirrored_cfg)):
    model_dir = os.path.join(work, name)
    shutil.copytree(init, model_dir)
    estimator = estimator_setup.make_estimator(cfg, model_dir, plan)
    estimator.train(make_input_fn(cfg, plan.source, training=True),
                    max_steps=STEPS)
    path = os.path.join(model_dir, f"model.ckpt-{STEPS}")
    out[name] = {
        "norms": grad_norms(model_dir),
        "variables": {v: tf.train.load_variable(path, v).tolist()
                      for v, _ in tf.train.list_variables(path)
                      if v.startswith("tiny/")}}
  return out


def grad_norms(model_dir):
  """{step: gradients/global_norm} from the train event files, steps as
  strings for JSON."""
  events = testutil.read_events(model_dir)
  return {str(step): testutil.scalar_value(value)
          for step, value in events["gradients/global_norm"].items()}


if __name__ == "__main__":
  print("PROBE_JSON " + json.dumps(main(sys.argv[1], sys.argv[2])))
