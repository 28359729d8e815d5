"""Runs one tiny model on one device and on two logical CPUs; prints JSON.

Run in its own process by tests/test_distribute.py: logical CPU devices must
be set before TensorFlow initialises, which a pytest process has usually done.

  python -m tests.mirrored_probe DATA_DIR WORK_DIR

All runs start from the same step-0 checkpoint and see the same batches (no
shuffle, no random augmentation), so they differ only in how the global batch
of 16 is computed: one device, or two replicas of 8 (mirrored; central_storage,
whose variables live once on the CPU). The mirrored run trains 2 steps, stops,
and resumes to step 3 (restore under the strategy). Printed:
per-step losses, the values of the variables at steps 0..3, the values the
batch-norm and EMA rules predict after step 1, EMA eval / export checks, and
the error for a global batch that two replicas cannot split.
"""

import json
import os
import shutil
import sys

os.environ.pop("TF_CONFIG", None)

from tests import testutil  # noqa: E402

OVERRIDES = ["data.augment=standardize", "data.shuffle_buffer=1",
             "model.bn_momentum=0.5", "ema.decay=0.99",
             "checkpoint.save_steps=1", "checkpoint.keep_max=100",
             "summary.save_steps=1", "log.every_steps=1", "train.steps=3"]
MIRRORED = ["distribute.strategy=mirrored", "distribute.num_cpu_devices=2"]
CENTRAL = ["distribute.strategy=central_storage", "distribute.num_cpu_devices=2"]
BN = "tiny/bn/"
STEPS = 3


def main(data_dir: str, work: str) -> dict:
  single_cfg = testutil.tiny_config(*OVERRIDES)
  mirrored_cfg = testutil.tiny_config(*OVERRIDES, *MIRRORED)
  central_cfg = testutil.tiny_config(*OVERRIDES, *CENTRAL)
  from estimator_cifar.engine import distribute
  distribute.configure_devices(mirrored_cfg)  # Before TensorFlow starts.
  from estimator_cifar.engine import estimator_setup
  from estimator_cifar.data.input_pipeline import make_input_fn

  plan = estimator_setup.make_plan(single_cfg, data_dir)
  init = os.path.join(work, "init")
  first_batch = testutil.write_initial_checkpoint(single_cfg, plan, init)
  dirs, errors = {}, {}
  for name, cfg, stops in (("single", single_cfg, [STEPS]),
                           ("mirrored", mirrored_cfg, [2, STEPS]),
                           ("central", central_cfg, [STEPS])):
    dirs[name] = os.path.join(work, name)
    shutil.copytree(init, dirs[name])
    estimator = estimator_setup.make_estimator(cfg, dirs[name], plan)
    try:
      for stop in stops:  # A stop and a restart restores under the strategy.
        estimator.train(make_input_fn(cfg, plan.source, training=True),
                        max_steps=stop)
    except Exception as e:  # pylint: disable=broad-except
      if name != "central":
        raise
      # Reported, so that the other runs' checks still run.
      errors[name] = f"{type(e).__name__}: {e}"
      del dirs[name]

  out = {"replicas": len(distribute.local_devices(mirrored_cfg)),
         "errors": errors,
         "losses": {n: _scalars(d)["loss"] for n, d in dirs.items()},
         "summary_tags": {n: sorted(_scalars(d)) for n, d in dirs.items()},
         "variables": {n: _variables(d) for n, d in dirs.items()},
         "expected_bn_step1": _expected_bn(first_batch, dirs["single"],
                                           single_cfg.model.bn_momentum)}
  out["ema"] = _ema_checks(mirrored_cfg, plan, dirs["mirrored"], work)
  from estimator_cifar.errors import ConfigError
  try:
    distribute.make_strategies(
        testutil.tiny_config(*MIRRORED, "train.batch_size=15"), None)
    out["odd_batch_error"] = None
  except ConfigError as e:
    out["odd_batch_error"] = str(e)
  return out


def _scalars(model_dir):
  """{tag: {step: value}} from the train event files (`loss` is Estimator's),
  steps as strings for JSON."""
  return {tag: {str(step): v for step, v in by_step.items()}
          for tag, by_step in testutil.scalars(
              testutil.read_events(model_dir)).items()}


def _variables(model_dir):
  """{step: {name: list}} for checkpoints 0..STEPS."""
  import tensorflow as tf
  out = {}
  for step in range(STEPS + 1):
    path = os.path.join(model_dir, f"model.ckpt-{step}")
    out[str(step)] = {name: tf.train.load_variable(path, name).tolist()
                      for name, _ in tf.train.list_variables(path)}
  return out


def _expected_bn(images, single_dir, momentum):
  """Moving mean/variance after step 1 from the step-0 conv kernel, by hand.

  One device: one update with the batch moments of all 16 images. Two
  replicas: each updates its ON_READ copy with the moments of its 8 images,
  and reading averages the copies. Fused batch norm feeds the moving variance
  with the Bessel-corrected batch variance.
  """
  import numpy as np
  import tensorflow as tf
  kernel = tf.train.load_variable(os.path.join(single_dir, "model.ckpt-0"),
                                  "tiny/conv/kernel")
  conv = tf.nn.conv2d(images, kernel, 2, "SAME").numpy().astype(np.float64)

  def moments(x):
    n = x.shape[0] * x.shape[1] * x.shape[2]
    return x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2)) * n / (n - 1)

  decay = 1.0 - momentum
  mean, var = moments(conv)
  halves = [moments(conv[:8]), moments(conv[8:])]
  half_mean = np.mean([m for m, _ in halves], axis=0)
  half_var = np.mean([v for _, v in halves], axis=0)
  return {"single": {"moving_mean": (mean * decay).tolist(),
                     "moving_variance": (1 - (1 - var) * decay).tolist()},
          "mirrored": {"moving_mean": (half_mean * decay).tolist(),
                       "moving_variance": (1 - (1 - half_var) * decay).tolist()}}


def _ema_checks(cfg, plan, model_dir, work):
  """Eval and export with the EMA weights of the mirrored run's checkpoint."""
  import dataclasses
  from estimator_cifar.engine import estimator_setup
  from estimator_cifar.data.input_pipeline import make_input_fn
  checkpoint = os.path.join(model_dir, f"model.ckpt-{STEPS}")
  results = {}
  for with_ema in (False, True):
    ema_cfg = dataclasses.replace(cfg, ema=dataclasses.replace(
        cfg.ema, eval_with_ema=with_ema))
    estimator = estimator_setup.make_estimator(ema_cfg, model_dir, plan)
    metrics = estimator.evaluate(make_input_fn(ema_cfg, plan.source, False),
                                 checkpoint_path=checkpoint, name=f"ema{with_ema}")
    export = estimator.export_saved_model(os.path.join(work, f"export{with_ema}"),
                                          _receiver, checkpoint_path=checkpoint)
    exported = _exported_value(export.decode(), "tiny/conv/kernel")
    results[str(with_ema)] = {"loss": float(metrics["loss"]),
                              "export_conv_kernel": exported.tolist()}
  return results


def _exported_value(export_dir, name):
  """The value `name` has once the SavedModel is loaded, as a server sees it."""
  import tensorflow as tf
  v1 = tf.compat.v1
  with tf.Graph().as_default(), v1.Session() as sess:
    v1.saved_model.loader.load(sess, ["serve"], export_dir)
    (variable,) = [v for v in v1.global_variables() if v.op.name == name]
    return sess.run(variable)


def _receiver():
  import tensorflow as tf
  images = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])
  return tf.estimator.export.ServingInputReceiver({"images": images},
                                                  {"images": images})


if __name__ == "__main__":
  print("PROBE_JSON " + json.dumps(main(sys.argv[1], sys.argv[2])))
