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
