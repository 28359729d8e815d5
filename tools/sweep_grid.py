"""The points of a sweep: the grid, their names, configs and states on disk.

A point is one combination of `--grid` values; its model_dir is named after
its overrides with canonical values (tools.sweep runs them).
"""

import dataclasses
import hashlib
import itertools
import json
import os
import re
import typing
from typing import Any, Optional, Sequence

from estimator_cifar import config as config_lib
from estimator_cifar import overrides, rundir
from estimator_cifar.errors import ConfigError
from estimator_cifar.rundir import run_record

BASE_NAME = "base"  # The one point of a sweep without --grid.
MAX_NAME_CHARS = 200  # File systems allow 255 bytes per name component.

_UNSAFE = re.compile(r"[^A-Za-z0-9._,+-]")


class SweepError(Exception):
  """A problem with the sweep's own command line; shown as one line."""


@dataclasses.dataclass(frozen=True)
class Point:
  """One grid point: its overrides (canonical `key=value`) and its model_dir."""
  name: str
  overrides: tuple[str, ...]
  model_dir: str


def _field_type(cfg: config_lib.ExperimentConfig, key: str):
  """The type hint of config field `key`; SweepError for an unknown key."""
  keys = config_lib.all_keys(cfg)
  if key not in keys:
    close = overrides.close_keys(key, keys)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise SweepError(f"unknown config key '{key}' in --grid.{hint} Run "
                     "`python -m estimator_cifar.run --experiment=... "
                     "--list_params` to see every key")
  section, _, name = key.rpartition(".")
  target = getattr(cfg, section) if section else cfg
  return typing.get_type_hints(type(target))[name]


def _canonical(value: Any) -> str:
  """A parsed value as override text that parses back to the same value."""
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, float):
    return repr(value)
  if isinstance(value, list):
    return "[" + ",".join(_canonical(v) for v in value) + "]"
  if isinstance(value, dict):
    items = (f"{k}:{_canonical(v)}" for k, v in value.items())
    return "{" + ",".join(items) + "}"
  return str(value)


def parse_grid(specs: Sequence[str], cfg: config_lib.ExperimentConfig
               ) -> list[tuple[str, list[str]]]:
  """Parses `--grid key=v1,v2,...` flags into (key, canonical values).

  Values are parsed as the field's type and written back canonically, so
  `1e-4` becomes `0.0001`. A value that does not parse is kept as written: its
  point will fail with the run's own error message while the others run. List
  fields take bracketed values: `schedule.boundaries_epochs=[91,136],[60,120]`.

  Args:
    specs: the --grid flag values.
    cfg: the experiment's config, for the field types.

  Returns:
    (key, values) per grid flag, in flag order; repeated values are dropped.

  Raises:
    SweepError: a malformed spec, unknown or repeated key, or no values.
  """
  grid = []
  for spec in specs:
    key, sep, text = spec.partition("=")
    key = key.strip()
    if not sep or not key:
      raise SweepError(f"--grid {spec!r} is not KEY=VALUE[,VALUE...], e.g. "
                       "--grid optimizer.learning_rate=0.05,0.1")
    if key in (k for k, _ in grid):
      raise SweepError(f"--grid names {key} twice; give all of its values "
                       "in one --grid")
    hint = _field_type(cfg, key)
    values = []
    for raw in overrides.split_top_level_commas(text):
      if not raw.strip():
        continue
      try:
        value = _canonical(config_lib.parse_value(key, raw, hint))
      except ConfigError:
        value = raw.strip()
      if value not in values:
        values.append(value)
    if not values:
      raise SweepError(f"--grid {spec!r} has no values")
    grid.append((key, values))
  return grid


def _name_text(value: str) -> str:
  """A canonical value as it reads in a directory name: no brackets/braces."""
  if value[:1] in "[{" and value[-1:] in "]}":
    value = value[1:-1]
  return value.replace(":", "-")


def _short_hash(text: str, length: int) -> str:
  return hashlib.sha1(text.encode()).hexdigest()[:length]


def point_name(overrides: Sequence[str]) -> str:
  """The directory name of a point: `key=value` parts joined by `__`.

  Characters that are unsafe in a path or a shell word become `_`, and then a
  short hash of the exact value keeps two values apart that would otherwise
  share a name; an over-long name is cut and hashed the same way. The name
  depends on the overrides only, so a rerun finds the same directory.
  """
  if not overrides:
    return BASE_NAME
  parts = []
  for override in overrides:
    key, _, value = override.partition("=")
    text = _name_text(value)
    safe = _UNSAFE.sub("_", text)
    if safe != text or not safe or safe.strip(".") == "":
      safe = f"{safe}-{_short_hash(value, 6)}"
    parts.append(f"{key}={safe}")
  name = "__".join(parts)
  if len(name) > MAX_NAME_CHARS:
    name = f"{name[:MAX_NAME_CHARS - 11]}-{_short_hash(name, 10)}"
  return name


def make_points(grid: Sequence[tuple[str, Sequence[str]]], root: str
                ) -> list[Point]:
  """The cross product of the grid, first key slowest, one Point each."""
  points = []
  keys = [key for key, _ in grid]
  for values in itertools.product(*(values for _, values in grid)):
    overrides = tuple(f"{k}={v}" for k, v in zip(keys, values))
    name = point_name(overrides)
    points.append(Point(name, overrides, os.path.join(root, name)))
  return points


def point_config(experiment: str, common: Sequence[str], point: Point
                 ) -> config_lib.ExperimentConfig:
  """The config a point's run resolves to (no TensorFlow needed).

  Raises:
    ConfigError: the point's values are invalid.
  """
  return config_lib.resolve(experiment, list(common) + list(point.overrides))


def point_state(point: Point, cfg: Optional[config_lib.ExperimentConfig]
                ) -> tuple[str, str]:
  """("finished" | "resume" | "new", detail) from the point's model_dir.

  Finished means run_info.json says "finished", records this very config
  (a changed --params_override or experiment file trains again) and, where train.steps
  fixes the length, reached it.
  """
  record = run_record.read(point.model_dir)
  if record is None:
    if os.path.exists(os.path.join(point.model_dir, rundir.STATE_FILE)):
      return "resume", "checkpoint without run_info.json"
    return "new", ""
  status, step = record.get("status"), record.get("final_step")
  if status == run_record.FINISHED and cfg is not None:
    wanted = json.loads(cfg.to_json())
    steps_reached = cfg.train.steps <= 0 or (step or 0) >= cfg.train.steps
    if record.get("config") == wanted and steps_reached:
      return "finished", f"finished at step {step}"
    return "resume", "finished with another config"
  if status == run_record.RUNNING:
    status = "running or killed"
  return "resume", f"last status {status}"
