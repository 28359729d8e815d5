"""What tools.benchmark measures inside its own process, with TensorFlow.

Rates from clock readings (median of windows, robust to a neighbour's burst),
the step timer hook, the input pipeline alone, FLOPs from the graph, the
conv/matmul peak probes and what machine it all ran on. TensorFlow is imported
on first use, not here, so that benchmark.py can check the config (and the
peers' module can share `Rate`) before paying for the import.
"""

import dataclasses
import os
import statistics
import time


@dataclasses.dataclass
class Rate:
  """Images (or GFLOP) per second of wall clock and per CPU-second."""
  wall: float | None = None
  cpu: float | None = None


def window_rates(marks: list[float], batch: int, warmup: int,
                 windows: int) -> list[float]:
  """Images/sec of each of `windows` equal runs of steps after `warmup`.

  `marks` are clock readings taken as each step ended (wall or CPU); step i
  lasted marks[i] - marks[i-1], so the timed steps are those after index
  `warmup`.
  """
  marks = marks[warmup:]
  steps = len(marks) - 1
  if steps < 1:
    return []
  windows = max(1, min(windows, steps))
  edges = [round(i * steps / windows) for i in range(windows + 1)]
  return [(b - a) * batch / (marks[b] - marks[a])
          for a, b in zip(edges, edges[1:]) if b > a and marks[b] > marks[a]]


def mean_rate(marks: list[float], batch: int, warmup: int) -> float | None:
  """Images/sec over all steps after `warmup`."""
  marks = marks[warmup:]
  if len(marks) < 2 or marks[-1] <= marks[0]:
    return None
  return (len(marks) - 1) * batch / (marks[-1] - marks[0])


def median(values):
  """Median of the values that are not None; None if there are none."""
  values = [v for v in values if v is not None]
  return statistics.median(values) if values else None


def steady_rate(timer, batch: int, warmup: int, windows: int) -> Rate:
  """Median-of-windows wall and CPU rates of a StepTimer's steps."""
  return Rate(median(window_rates(timer.wall, batch, warmup, windows)),
              median(window_rates(timer.cpu, batch, warmup, windows)))


def _tf():
  """TensorFlow, imported on first use (see the module docstring)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def step_timer():
  """A SessionRunHook that reads the wall and CPU clocks after every step.

  Defined on call so that TensorFlow is imported only after the config is
  checked (a typo in an override is answered at once).
  """
  tf = _tf()

  class StepTimer(tf.estimator.SessionRunHook):

    def __init__(self):
      self.wall = []  # perf_counter() after each step.
      self.cpu = []  # process_time() (all threads) after each step.
      self.first_step_end = None  # time.time() after the first.
      self.first_step_cpu = None  # process_time() after the first.

    def after_run(self, run_context, run_values):
      del run_context, run_values
      self.wall.append(time.perf_counter())
      self.cpu.append(time.process_time())
      if self.first_step_end is None:
        self.first_step_end = time.time()
        self.first_step_cpu = self.cpu[-1]

  return StepTimer()


def measure_pipeline(cfg, input_fn, batch: int, batches: int, warmup: int,
                     windows: int, threads: int = 0) -> Rate:
  """Images/sec of `input_fn` alone, in a graph-mode session.

  Runs a group of the batch tensors (no copy into Python), so what is timed
  is tf.data producing batches. `threads` > 0 limits tf.data's private thread
  pool to that many threads.
  """
  tf = _tf()
  from estimator_cifar.engine import estimator_setup
  v1 = tf.compat.v1
  with tf.Graph().as_default():
    ds = input_fn()
    if threads:
      options = tf.data.Options()
      options.threading.private_threadpool_size = threads
      ds = ds.with_options(options)
    iterator = v1.data.make_initializable_iterator(ds)
    op = tf.group(tf.nest.flatten(iterator.get_next()))
    wall, cpu = [], []
    with v1.Session(config=estimator_setup.session_config(cfg)) as sess:
      sess.run(iterator.initializer)
      for _ in range(warmup + batches + 1):
        sess.run(op)
        wall.append(time.perf_counter())
        cpu.append(time.process_time())
  return Rate(median(window_rates(wall, batch, warmup, windows)),
              median(window_rates(cpu, batch, warmup, windows)))


def count_flops(cfg, num_classes: int) -> dict:
  """Forward FLOPs per image of the inference graph (batch 1, float32)."""
  tf = _tf()
  from estimator_cifar.model import nets
  v1 = tf.compat.v1
  size = cfg.data.image_size
  with tf.Graph().as_default() as graph:
    images = v1.placeholder(tf.float32, [1, size, size, 3])
    nets.build(cfg.model, num_classes)(images, False)
    options = (v1.profiler.ProfileOptionBuilder(
        v1.profiler.ProfileOptionBuilder.float_operation())
               .with_empty_output().build())
    profiled = v1.profiler.profile(graph, cmd="op", options=options)
    conv_matmul = 0
    for op in graph.get_operations():
      if op.type == "Conv2D":
        out = op.outputs[0].shape.as_list()
        kh, kw, cin, _ = op.inputs[1].shape.as_list()
        conv_matmul += 2 * out[1] * out[2] * out[3] * kh * kw * cin
      elif op.type == "MatMul":
        a, out = op.inputs[0].shape.as_list(), op.outputs[0].shape.as_list()
        inner = a[0] if op.get_attr("transpose_a") else a[1]
        conv_matmul += 2 * out[0] * out[1] * inner
  return {"model_flops_per_image": int(profiled.total_float_ops),
          "conv_matmul_flops_per_image": int(conv_matmul),
          "train_flops_per_image": int(3 * conv_matmul)}


PEAK_DTYPES = {"float32": "float32", "mixed_float16": "float16",
               "mixed_bfloat16": "bfloat16"}


def measure_peak(dtype: str = "float32", trials: int = 3, reps: int = 10,
                 matmul: bool = True) -> dict[str, list[Rate]]:
  """GFLOP/s of the peak probes (eager, default device), per trial.

  3x3 convs at batch 128 on 32x32x16 and 8x8x64 (ResNet-20's first and last
  stages) and a 2048^2 matmul; each trial times `reps` calls (a third as many
  for the matmul) after one untimed call.
  """
  tf = _tf()
  dt = tf.as_dtype(dtype)

  def trial(fn, flops, n):
    fn().numpy()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
      out = fn()
    out.numpy()  # Waits for an asynchronous device (GPU).
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Rate(flops * n / wall / 1e9, flops * n / cpu / 1e9 if cpu else None)

  def normal(shape):
    return tf.cast(tf.random.normal(shape), dt)

  x, k = normal([128, 32, 32, 16]), normal([3, 3, 16, 16])
  x3, k3 = normal([128, 8, 8, 64]), normal([3, 3, 64, 64])
  probes = {
      "conv3x3_32x32x16": (tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME")),
                           2 * 128 * 32 * 32 * 16 * 16 * 9, reps),
      "conv3x3_8x8x64": (tf.function(lambda: tf.nn.conv2d(x3, k3, 1, "SAME")),
                         2 * 128 * 8 * 8 * 64 * 64 * 9, reps),
  }
  if matmul:
    a, b = normal([2048, 2048]), normal([2048, 2048])
    probes["matmul_2048"] = (tf.function(lambda: tf.matmul(a, b)),
                             2 * 2048 ** 3, max(1, reps // 3))
  return {name: [trial(fn, flops, n) for _ in range(trials)]
          for name, (fn, flops, n) in probes.items()}


def machine_info() -> dict:
  """What the figures were measured on."""
  from estimator_cifar.engine.precision import cpu_info
  tf = _tf()
  return {"cpu_count": os.cpu_count(), "cpu_model": cpu_info()[0],
          "tf_version": tf.__version__,
          "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def load_average() -> list[float]:
  """The 1, 5 and 15-minute load averages, [] where the OS has none."""
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return []
