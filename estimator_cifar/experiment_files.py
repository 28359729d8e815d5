"""Where experiment files are found: the built-ins and a user's own folders.

The built-in experiments live in the repository's top-level `experiments/` and
are installed as `estimator_cifar.experiments` (setup.py's `package_dir`), so a
name resolves the same from a checkout, an editable install and a wheel.

Search order for `--experiment=NAME`: folders added at run time
(`--experiments_dir`, `add_dirs`), then those in the environment variable
`ESTIMATOR_CIFAR_EXPERIMENTS` (separated by `os.pathsep`), then the built-ins;
the first `NAME.py` wins. A path (`--experiment=dir/file.py`) is loaded as is;
a JSON path (a run's `config.json`, or a `--config_file`) is read as data.
"""

import ast
import importlib.util
import json
import os
from types import ModuleType
from typing import Any

from estimator_cifar import paths
from estimator_cifar.errors import ConfigError

ENV_VAR = "ESTIMATOR_CIFAR_EXPERIMENTS"
# Files read as data rather than run: JSON, and YAML only to say it is not read.
CONFIG_FILE_SUFFIXES = (".json", ".yaml", ".yml")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_added: list[str] = []


def builtin_dir() -> str:
  """The folder of the built-in experiments, in a checkout or installed."""
  checkout = os.path.join(os.path.dirname(_PACKAGE_DIR), "experiments")
  # A checkout has setup.py beside the package; in site-packages a sibling
  # `experiments/` would be someone else's package.
  if os.path.isfile(os.path.join(os.path.dirname(_PACKAGE_DIR), "setup.py")) \
      and os.path.isdir(checkout):
    return checkout
  return os.path.join(_PACKAGE_DIR, "experiments")


def add_dirs(dirs: list[str] | tuple[str, ...]) -> None:
  """Searches `dirs` (`~`/`$VARS` expanded) before all others from now on."""
  for folder in reversed([paths.expand(d) for d in dirs if d]):
    if folder in _added:
      _added.remove(folder)
    _added.insert(0, folder)


def search_dirs() -> list[str]:
  """The folders searched for experiment names, first match wins."""
  from_env = [paths.expand(d) for d in
              os.environ.get(ENV_VAR, "").split(os.pathsep) if d.strip()]
  found = []
  for folder in _added + from_env + [builtin_dir()]:
    if folder not in found:
      found.append(folder)
  return found


def is_path(name_or_path: str) -> bool:
  """Whether `--experiment` names a file rather than an experiment."""
  return name_or_path.endswith((".py", *CONFIG_FILE_SUFFIXES)) or \
      os.sep in name_or_path \
      or name_or_path.startswith("~")


def is_recorded_config(path: str) -> bool:
  """Whether `path` is a config file (JSON, as config.json), not Python."""
  return path.endswith(CONFIG_FILE_SUFFIXES)


def read_config_file(path: str) -> dict[str, Any]:
  """The nested dict in JSON file `path` (a run's config.json format).

  Raises:
    ConfigError: the file is missing, is YAML (PyYAML is not a dependency),
      or is not a JSON object.
  """
  path = paths.expand(path)
  if path.endswith((".yaml", ".yml")):
    raise ConfigError(
        f"Config file {path} is YAML, which needs the PyYAML package, not "
        "installed with this one. Write it as JSON in the format of a run's "
        "config.json (e.g. {\"train\": {\"steps\": 1000}}), or start from "
        "one: cp runs/NAME/config.json my_run.json.")
  try:
    with open(path, encoding="utf-8") as f:
      values = json.load(f)
  except FileNotFoundError:
    raise ConfigError(f"Config file {path} does not exist. Check the path; "
                      "a run's recorded config is <model_dir>/config.json.") from None
  except (OSError, ValueError) as e:
    raise ConfigError(f"Cannot read config file {path}: {e}. It must be a JSON "
                      "object in the format of a run's config.json, e.g. "
                      "{\"train\": {\"steps\": 1000}}.") from None
  if not isinstance(values, dict):
    raise ConfigError(f"Config file {path} holds a JSON "
                      f"{type(values).__name__}, not an object of sections, "
                      "e.g. {\"train\": {\"steps\": 1000}}.")
  return values


def find(name: str) -> str | None:
  """The file of experiment `name` on the search path, or None."""
  for folder in search_dirs():
    path = os.path.join(folder, name + ".py")
    if os.path.isfile(path):
      return path
  return None


def all_files() -> dict[str, str]:
  """Every experiment name on the search path and its file (first one wins)."""
  found: dict[str, str] = {}
  for folder in search_dirs():
    if not os.path.isdir(folder):
      continue
    for fname in sorted(os.listdir(folder)):
      if fname.endswith(".py") and not fname.startswith("_"):
        found.setdefault(fname[:-3], os.path.join(folder, fname))
  return dict(sorted(found.items()))


def summary(path: str) -> str:
  """The first line of the file's docstring, read without running the file."""
  try:
    with open(path, encoding="utf-8") as f:
      doc = ast.get_docstring(ast.parse(f.read(), path)) or ""
  except (OSError, SyntaxError, ValueError) as e:
    return f"(cannot be read: {e})"
  return doc.strip().splitlines()[0] if doc.strip() else ""


def import_file(path: str, name: str) -> ModuleType:
  """Executes the experiment file at `path` as a fresh module."""
  spec = importlib.util.spec_from_file_location(
      f"estimator_cifar.experiments.{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
