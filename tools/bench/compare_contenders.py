"""One contender of tools/bench/real_subset_compare.py, trained for a wall-clock budget.

Run by real_subset_compare as a child process (its own imports, threads and
memory): `python -m tools.bench.compare_contenders SPEC_JSON`. The spec names the
contender (`package`, `minimal` or `keras`), data_dir, work_dir, budget_secs,
points, experiment and overrides; the result goes to spec["out"] as JSON:
{"name", "points": [[seconds, step, accuracy], ...], "notes": [...]}.

The clock starts just before the contender builds its model and stops when it
has trained for budget_secs (a time check after every step); checkpoints are
saved about every budget_secs / points seconds and once at the end. Each
checkpoint is evaluated on the test split afterwards, outside the clock.

- package: this package's path (make_plan, make_estimator, its hooks, every
  feature the experiment turns on). Its schedule needs a length in steps, so
  a short untimed probe of PROBE_STEPS measures steps per second first and
  the run gets train.steps = rate x budget x FIT.
- minimal: tools/bench/minimal_estimator.py's dataset and model_fn (ResNet-20,
  momentum 0.1, constant rate), in a plain Estimator.
- keras: tf.keras model.fit on tools/bench/peer_keras.py's ResNet-20 with the usual
  recipe (as that peer: pad-crop-flip, per-image standardization, SGD 0.1
  momentum 0.9, L2 1e-4, batch 128), on the real data held in memory.

No absl flags here, so importing tools.bench.minimal_estimator (whatever flags it
defines) cannot collide with them.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.bench.compare_contenders", file=sys.stderr)
  sys.exit(2)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

CONTENDERS = ("package", "minimal", "keras")
PROBE_STEPS = 30      # Steps of the package's untimed speed probe.
PROBE_SKIP = 10       # Its first steps (graph warm-up) are not counted.
FIT = 0.85            # Share of the budget planned as steps (the rest: set-up).
KERAS_BATCH = 128


class _Clock(tf.estimator.SessionRunHook):
  """Stops training once `budget` seconds have passed since `start`."""

  def __init__(self, start: float, budget: float):
    self._start, self._budget = start, budget

  def after_run(self, run_context, run_values):
    del run_values
    if time.perf_counter() - self._start >= self._budget:
      run_context.request_stop()


class _Marks(tf.estimator.CheckpointSaverListener):
  """Records (seconds since start, step, checkpoint path) at each save."""

  def __init__(self, start: float, model_dir: str):
    self._start, self._model_dir, self.marks = start, model_dir, []

  def after_save(self, session, global_step_value):
    del session
    path = tf.train.latest_checkpoint(self._model_dir)
    self.marks.append((time.perf_counter() - self._start,
                       int(global_step_value), path))


class _StepTimes(tf.estimator.SessionRunHook):
  def __init__(self):
    self.times = []

  def after_run(self, run_context, run_values):
    self.times.append(time.perf_counter())


def _distinct(marks):
  """One mark per step (the end-of-training save may repeat the last)."""
  seen, out = set(), []
  for mark in marks:
    if mark[1] not in seen and mark[2]:
      seen.add(mark[1])
      out.append(mark)
  return out


def run_package(spec: dict) -> dict:
  from estimator_cifar import config as config_lib
  from estimator_cifar.data.input_pipeline import make_input_fn
  from estimator_cifar.engine import estimator_setup
  from estimator_cifar.engine import hooks as hooks_lib
  budget, points = spec["budget_secs"], spec["points"]
  # The minimal and Keras contenders train in float32; so does the package
  # unless the overrides say otherwise.
  cfg = config_lib.resolve(spec["experiment"],
                           ["train.precision=float32", *spec["overrides"]])
  cfg.checkpoint.save_secs = max(1, int(budget / points))
  cfg.checkpoint.save_steps = 0
  cfg.checkpoint.keep_max = 4 * points + 4
  # Probe: steps per second of this very recipe on this machine, untimed.
  probe_dir = os.path.join(spec["work_dir"], "package_probe")
  plan = estimator_setup.make_plan(cfg, spec["data_dir"])
  probe = estimator_setup.make_estimator(cfg, probe_dir, plan)
  times = _StepTimes()
  probe.train(make_input_fn(cfg, plan.source, True), max_steps=PROBE_STEPS,
              hooks=[times])
  rate = (len(times.times) - PROBE_SKIP - 1) / (
      times.times[-1] - times.times[PROBE_SKIP])
  cfg.train.steps = max(1, int(rate * budget * FIT))
  notes = [f"package: {rate:.2f} steps/s in the probe, so train.steps="
           f"{cfg.train.steps} ({cfg.train.steps / plan.steps_per_epoch:.1f} "
           "epochs) planned for the budget"]
  model_dir = os.path.join(spec["work_dir"], "package")
  start = time.perf_counter()
  plan = estimator_setup.make_plan(cfg, spec["data_dir"])
  estimator = estimator_setup.make_estimator(cfg, model_dir, plan)
  marks = _Marks(start, model_dir)
  hooks = hooks_lib.train_hooks(cfg, model_dir, plan.max_steps, True)
  estimator.train(make_input_fn(cfg, plan.source, True),
                  max_steps=plan.max_steps, hooks=hooks + [_Clock(start, budget)],
                  saving_listeners=[marks])
  eval_input = make_input_fn(cfg, plan.source, False)
  evaluated = [[t, step, float(estimator.evaluate(
      eval_input, checkpoint_path=path)["accuracy"])]
               for t, step, path in _distinct(marks.marks)]
  return {"points": evaluated, "notes": notes}


def run_minimal(spec: dict) -> dict:
  from . import minimal_estimator as minimal
  budget, points = spec["budget_secs"], spec["points"]
  model_dir = os.path.join(spec["work_dir"], "minimal")
  start = time.perf_counter()
  estimator = tf.estimator.Estimator(
      minimal.model_fn, model_dir, config=tf.estimator.RunConfig(
          save_checkpoints_secs=max(1, int(budget / points)),
          keep_checkpoint_max=4 * points + 4, log_step_count_steps=None))
  marks = _Marks(start, model_dir)
  estimator.train(lambda: minimal.dataset(spec["data_dir"], True, KERAS_BATCH),
                  max_steps=10 ** 9, hooks=[_Clock(start, budget)],
                  saving_listeners=[marks])
  evaluated = [[t, step, float(estimator.evaluate(
      lambda: minimal.dataset(spec["data_dir"], False, 500),
      checkpoint_path=path)["accuracy"])]
               for t, step, path in _distinct(marks.marks)]
  return {"points": evaluated, "notes": []}


def read_cifar10(data_dir: str, train: bool) -> tuple[np.ndarray, np.ndarray]:
  """uint8 images [N, 32, 32, 3] and int labels from the binary files."""
  folder = os.path.join(data_dir, "cifar-10-batches-bin")
  names = ([f"data_batch_{i}.bin" for i in range(1, 6)] if train
           else ["test_batch.bin"])
  records = np.concatenate([np.fromfile(os.path.join(folder, n), np.uint8)
                            for n in names]).reshape(-1, 3073)
  images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return images, records[:, 0].astype(np.int64)


def run_keras(spec: dict) -> dict:
  from . import peer_keras
  budget, points = spec["budget_secs"], spec["points"]
  x, y = read_cifar10(spec["data_dir"], True)
  x_test, y_test = read_cifar10(spec["data_dir"], False)

  def augment(image, label):
    image = tf.image.pad_to_bounding_box(tf.cast(image, tf.float32), 4, 4, 40, 40)
    image = tf.image.random_flip_left_right(tf.image.random_crop(image, [32, 32, 3]))
    return tf.image.per_image_standardization(image), label

  train = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).repeat()
           .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
           .batch(KERAS_BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
  test = tf.data.Dataset.from_tensor_slices((x_test, y_test)).map(
      lambda i, l: (tf.image.per_image_standardization(tf.cast(i, tf.float32)),
                    l)).batch(500)
  folder = os.path.join(spec["work_dir"], "keras")
  os.makedirs(folder, exist_ok=True)
  start = time.perf_counter()
  marks = []

  class Marks(tf.keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      elapsed = time.perf_counter() - start
      done = elapsed >= budget
      if done or elapsed >= (len(marks) + 1) * budget / points:
        path = os.path.join(folder, f"weights-{len(marks)}")
        self.model.save_weights(path)
        marks.append((time.perf_counter() - start,
                      int(self.model.optimizer.iterations.numpy()), path))
      if done:
        self.model.stop_training = True

  model = peer_keras.resnet20()
  model.compile(optimizer=tf.keras.optimizers.SGD(0.1, momentum=0.9),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True), metrics=["accuracy"])
  model.fit(train, epochs=10 ** 6, steps_per_epoch=max(1, len(x) // KERAS_BATCH),
            callbacks=[Marks()], verbose=0)
  evaluated = []
  for t, step, path in marks:
    model.load_weights(path)
    evaluated.append([t, step, float(model.evaluate(test, verbose=0)[1])])
  return {"points": evaluated, "notes": []}


def main(argv: list[str]) -> int:
  spec = json.loads(argv[1])
  runner = {"package": run_package, "minimal": run_minimal,
            "keras": run_keras}[spec["contender"]]
  result = dict(runner(spec), name=spec["contender"])
  with open(spec["out"], "w") as f:
    json.dump(result, f)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
