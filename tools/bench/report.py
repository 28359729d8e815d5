"""The JSON line of tools.benchmark, built from what a run measured.

Kept apart from the measuring so that every field's name, rounding and
derivation (medians over repeats, ratios, fraction of peak) sits in one
place, next to the module docstring of benchmark.py that documents them.
No TensorFlow here.
"""

import dataclasses

from .measure import PEAK_DTYPES, Rate, load_average, median

# Report names of the peers, in the JSON line's order; a peer that did not
# run still gets its fields, as null.
PEER_NAMES = ("keras", "minimal", "keras_same_precision")
KERAS_PEERS = ("keras", "keras_same_precision")  # These report a precision.


@dataclasses.dataclass
class Measurements:
  """What one benchmark run gathered, before any median or rounding."""
  # Per repeat: (steady Rate, mean wall rate, wall rates of the windows).
  train_runs: list[tuple[Rate, float | None, list[float]]] = (
      dataclasses.field(default_factory=list))
  eval_rate: Rate = dataclasses.field(default_factory=Rate)
  pipeline_rate: Rate = dataclasses.field(default_factory=Rate)
  by_threads: dict[str, Rate] = dataclasses.field(default_factory=dict)
  peak: dict[str, list[Rate]] = dataclasses.field(default_factory=dict)
  flops: dict[str, int] = dataclasses.field(default_factory=dict)
  rss: float | None = None  # MB
  first_step: tuple[float, float] | None = None  # (wall since start, CPU s)
  peer_runs: dict[str, list[Rate | None]] = dataclasses.field(
      default_factory=dict)
  peer_precisions: dict[str, str | None] = dataclasses.field(
      default_factory=dict)
  # --precisions: each precision's steady Rate per repeat, the run's own first.
  precision_runs: dict[str, list[Rate]] = dataclasses.field(
      default_factory=dict)
  notes: list[str] = dataclasses.field(default_factory=list)
  load_start: list[float] = dataclasses.field(default_factory=list)
  info: dict = dataclasses.field(default_factory=dict)  # machine_info()

  def add_peak(self, more: dict[str, list[Rate]]) -> None:
    """Adds a measure_peak result's trials to those of earlier calls."""
    for name, values in more.items():
      self.peak.setdefault(name, []).extend(values)


def build(args, cfg, forced: list[str], m: Measurements) -> dict:
  """The JSON line's dict, less `targets` (see benchmark.py's docstring)."""
  notes, info, load_start = m.notes, m.info, m.load_start
  train = Rate(median([r[0].wall for r in m.train_runs]),
               median([r[0].cpu for r in m.train_runs]))
  peaks = {name: Rate(median([r.wall for r in rates]),
                      median([r.cpu for r in rates]))
           for name, rates in m.peak.items()}
  convs = [r for name, r in peaks.items() if name.startswith("conv")]
  conv_peak = Rate(max((r.wall for r in convs), default=None),
                   max((r.cpu for r in convs if r.cpu), default=None))
  per_image = m.flops.get("train_flops_per_image")
  achieved = Rate(*(rate * per_image / 1e9 if rate and per_image else None
                    for rate in (train.wall, train.cpu)))
  peers = {name: Rate(median([r.wall for r in runs if r]),
                      median([r.cpu for r in runs if r]))
           for name, runs in m.peer_runs.items()}
  if not info["gpus"]:
    notes.append("No GPU visible: every figure is a CPU figure.")
  if load_start and info["cpu_count"] and load_start[0] > info["cpu_count"]:
    notes.append(f"Machine loaded (load average {load_start[0]} on "
                 f"{info['cpu_count']} CPUs): wall-clock rates are low and "
                 "noisy; compare the _per_cpu_sec figures and their ratios.")
  pipeline_rate, eval_rate, first_step = m.pipeline_rate, m.eval_rate, m.first_step
  result = {
      "experiment": cfg.name,
      "params_override": args.params_override,
      "forced_overrides": ",".join(forced),
      "data": args.data_dir or "synthetic",
      "model": cfg.model.name, "depth": cfg.model.depth,
      "precision": cfg.train.precision, "xla": cfg.session.xla,
      "batch_size": cfg.train.batch_size,
      "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
      "train_images_per_sec": _round(train.wall),
      "train_images_per_cpu_sec": _round(train.cpu),
      "train_images_per_sec_mean": _round(median([r[1] for r in m.train_runs])),
      "train_images_per_sec_windows": [[_round(w) for w in r[2]]
                                       for r in m.train_runs],
      "input_pipeline_images_per_sec": _round(pipeline_rate.wall),
      "input_pipeline_images_per_cpu_sec": _round(pipeline_rate.cpu),
      "input_pipeline_by_threads": {n: _round(r.wall)
                                    for n, r in m.by_threads.items()},
      "eval_images_per_sec": _round(eval_rate.wall),
      "eval_images_per_cpu_sec": _round(eval_rate.cpu),
      "seconds_to_first_step": _round(first_step[0], 2),
      "cpu_seconds_to_first_step": _round(first_step[1], 2),
      "peak_rss_mb": _round(m.rss),
      **m.flops,
      "flops_method": (
          "model_flops_per_image: tf.compat.v1.profiler float_operation on the "
          "forward inference graph (batch 1); train_flops_per_image = 3 x the "
          "forward Conv2D/MatMul FLOPs counted from the graph's shapes"),
      "peak_dtype": PEAK_DTYPES[cfg.train.precision],
      "peak_gflops": {n: _round(r.wall) for n, r in peaks.items()},
      "peak_gflops_per_cpu_sec": {n: _round(r.cpu) for n, r in peaks.items()},
      "conv_peak_gflops": _round(conv_peak.wall),
      "conv_peak_gflops_per_cpu_sec": _round(conv_peak.cpu),
      "achieved_gflops": _round(achieved.wall),
      "achieved_gflops_per_cpu_sec": _round(achieved.cpu),
      "achieved_fraction_of_peak": _ratio(achieved.wall, conv_peak.wall),
      "achieved_fraction_of_peak_cpu": _ratio(achieved.cpu, conv_peak.cpu),
      "input_pipeline_vs_train": _ratio(pipeline_rate.wall, train.wall),
      "input_pipeline_vs_train_cpu": _ratio(pipeline_rate.cpu, train.cpu),
      "eval_vs_train": _ratio(eval_rate.wall, train.wall),
      "eval_vs_train_cpu": _ratio(eval_rate.cpu, train.cpu),
  }
  for name in PEER_NAMES:
    rate = peers.get(name, Rate())
    result.update({
        f"{name}_images_per_sec": _round(rate.wall),
        f"{name}_images_per_cpu_sec": _round(rate.cpu),
        f"ratio_vs_{name}": _ratio(train.wall, rate.wall),
        f"ratio_vs_{name}_cpu": _ratio(train.cpu, rate.cpu),
        f"{name}_runs": [_round(r.wall) if r else None
                         for r in m.peer_runs.get(name, [])],
    })
  for name in KERAS_PEERS:
    result[f"{name}_precision"] = m.peer_precisions.get(name)
  if m.precision_runs:
    result["by_precision"] = by_precision(m.precision_runs)
  result["machine"] = dict(info, load_avg_start=load_start,
                           load_avg_end=load_average())
  result["notes"] = notes
  return result


def by_precision(runs: dict[str, list[Rate]]) -> dict[str, dict]:
  """Medians per precision and their ratios over the first precision's."""
  medians = {name: Rate(median([r.wall for r in rates]),
                        median([r.cpu for r in rates]))
             for name, rates in runs.items()}
  own = next(iter(medians.values()))
  return {name: {"images_per_sec": _round(rate.wall),
                 "images_per_cpu_sec": _round(rate.cpu),
                 "runs": [_round(r.wall) for r in runs[name]],
                 "ratio": _ratio(rate.wall, own.wall),
                 "ratio_cpu": _ratio(rate.cpu, own.cpu)}
          for name, rate in medians.items()}


def _round(value, digits: int = 1):
  return None if value is None else round(float(value), digits)


def _ratio(a, b):
  return round(a / b, 3) if a and b else None
