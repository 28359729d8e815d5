"""What the tools share: absl flags, one-line errors, child processes, the listing.

Each tool defines its flags on a `flags.FlagValues` of its own rather than on
the global `flags.FLAGS`, so tools can be imported side by side (tests do) and
their `main(argv)` called more than once in one process.
"""

import os
import re
import sys
from typing import NoReturn, Sequence

from absl import flags

import estimator_cifar
from estimator_cifar import experiment_files

# The folder holding the estimator_cifar package these tools run (the checkout,
# or site-packages once installed): children get it first on PYTHONPATH, so
# they run the same code as the tool that starts them.
CODE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(estimator_cifar.__file__)))

MAIN_BLOCK = re.compile(r'^if __name__ == "__main__":', re.M)


def child_env(**extra: str) -> dict[str, str]:
  """This process's environment, CODE_ROOT first on PYTHONPATH, plus `extra`."""
  env = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
  env["PYTHONPATH"] = os.pathsep.join(
      p for p in (CODE_ROOT, os.environ.get("PYTHONPATH")) if p)
  return env


def exit_error(message: str) -> NoReturn:
  """Prints `error: message` to stderr and exits 2, the status of a user error."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def parse(flag_values: flags.FlagValues, argv: Sequence[str],
          doc: str) -> list[str]:
  """Parses `argv` (no program name) into `flag_values`; returns the rest.

  Flags not in `argv` go back to their defaults. `--help` prints `doc` and
  the flags and exits 0; an unknown or malformed flag prints one `error:`
  line and exits 2.
  """
  if "--help" in argv or "-h" in argv:
    print(doc.strip() + "\n\nFlags:\n" + flag_values.get_help())
    sys.exit(0)
  flag_values.unparse_flags()
  try:
    rest = flag_values(["tool"] + list(argv))
  except flags.Error as e:
    exit_error(str(e))
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()  # Else absl logging warns on first use.
  return rest[1:]


def runnable_tools(folder: str) -> dict[str, str]:
  """Each module in `folder` that runs as a tool -> its docstring's first line.

  A tool is a module with a `__main__` block; the files are read, not run.
  """
  found = {}
  for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if name.endswith(".py") and not name.startswith("_"):
      with open(path, encoding="utf-8") as f:
        if MAIN_BLOCK.search(f.read()):
          found[name[:-3]] = experiment_files.summary(path)
  return found


def print_tools(folder: str, package: str) -> None:
  """Prints `python -m PACKAGE.NAME` and its one-line summary for each tool."""
  tools = runnable_tools(folder)
  width = max(len(f"{package}.{name}") for name in tools)
  for name, summary in tools.items():
    print(f"python -m {package + '.' + name:<{width}}  {summary}")
