"""User-given paths: `~` and `$VARS` expanded wherever a path enters.

A shell expands `~` only at the start of a word, so `--data_dir=~/x` reaches
the program unexpanded; without this it would create a folder named `~`.
"""

import os


def expand(path: str | None) -> str | None:
  """`path` with `~`, `~user` and `$VAR`/`${VAR}` expanded; None stays None."""
  if not path:
    return path
  return os.path.expanduser(os.path.expandvars(path))


def cache_dir() -> str:
  """The package's cache dir: $XDG_CACHE_HOME/estimator_cifar, by default
  ~/.cache/estimator_cifar (as Keras and tfds keep theirs)."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(base, "estimator_cifar")
