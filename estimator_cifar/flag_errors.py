"""Command-line flag parsing whose mistakes read like every other user error.

absl answers an unknown or malformed flag with `FATAL Flags parsing error` and
exit 1; here it is one `error:` paragraph naming the closest flags (and config
fields, which go through `--params_override`), and exit 2 like a `UserError`.
`-h` and `--help` print the program's summary and its flags, and exit 0.
"""

import difflib
import re
import sys

from absl import flags

from estimator_cifar import config as config_lib
from estimator_cifar import overrides
from estimator_cifar.errors import UserError

# What people type for help; absl knows only --help (exit 1) and --helpshort.
HELP_FLAGS = {"-h", "--help", "-help", "--helpshort"}
_FLAG_IN_MESSAGE = re.compile(r"flag --(\w+)")
_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false",
               "string": "a string", "multi_string": "a string"}


class FlagError(UserError):
  """An unknown flag, a flag without its value, or a value of the wrong type."""


def parser(flag_values: flags.FlagValues, owner_flag: str):
  """An `app.run(flags_parser=...)` that prints `error: ...` and exits 2.

  Args:
    flag_values: the FlagValues to parse into (usually absl's FLAGS).
    owner_flag: a flag the program defines itself; the flags of its module
      are the ones suggested for a typo.
  """

  def parse(argv: list[str]) -> list[str]:
    options = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    if HELP_FLAGS & set(options):
      print(usage(flag_values, owner_flag))
      sys.exit(0)
    try:
      return flag_values(argv)
    except flags.Error as e:
      print(f"error: {explain(e, flag_values, owner_flag)}", file=sys.stderr,
            flush=True)
      sys.exit(FlagError.exit_code)

  return parse


def usage(flag_values: flags.FlagValues, owner_flag: str) -> str:
  """The program's docstring, then its own flags with their help."""
  module = flag_values.find_module_defining_flag(owner_flag)
  # Run as `python -m`, the module is known by its file name.
  program = sys.modules.get(module) or sys.modules["__main__"]
  summary = (program.__doc__ or "").strip()
  # module_help's first line names the module's file: not for users.
  own = "\n".join(flag_values.module_help(module).strip().splitlines()[1:])
  return (f"{summary}\n\nflags:\n{own}\n\n"
          "--helpfull lists TensorFlow's and absl's flags too.")


def explain(error: flags.Error, flag_values: flags.FlagValues,
            owner_flag: str) -> str:
  """The one-paragraph message for absl's parsing `error`."""
  own = _own_flags(flag_values, owner_flag)
  if isinstance(error, flags.UnrecognizedFlagError):
    name = error.flagname
    given = error.flagvalue or f"--{name}"
    value = given.partition("=")[2] or "..."
    close = difflib.get_close_matches(name, own, n=3, cutoff=0.5)
    fields = difflib.get_close_matches(
        overrides.ABBREVIATIONS.get(name.lower(), name),
        {k.rpartition(".")[2] for k in _config_keys()}, n=2, cutoff=0.7)
    keys = [k for k in _config_keys() if k.rpartition(".")[2] in fields]
    hint = []
    if close:
      hint.append("Did you mean " + ", ".join(f"--{c}" for c in close) + "?")
    if keys:
      hint.append("Config fields are set with --params_override: " + ", ".join(
          f"--params_override={k}={value}" for k in keys) + ".")
    if not close:
      hint.append("The flags are: " + ", ".join(f"--{f}" for f in own) + ".")
    if not keys:
      hint.append("Config fields are set with --params_override=section."
                  "field=value (--list_params lists them).")
    return FlagError(f"Unknown flag {given}. {' '.join(hint)}").args[0]
  match = _FLAG_IN_MESSAGE.search(str(error))
  name = match.group(1) if match else None
  if name in flag_values:
    flag = flag_values[name]
    detail = str(error).split(": ", 1)[-1] if ": " in str(error) else str(error)
    kind = _TYPE_WORDS.get(flag.flag_type())
    takes = f" It takes {kind}:" if kind else " For example:"
    return FlagError(
        f"Bad value for --{name}: {detail}.{takes} --{name}={_example(flag)} "
        f"({flag.help.strip().rstrip('.')}).").args[0]
  return FlagError(f"Cannot parse the command line: {error}. Run with "
                   "-h to see the flags.").args[0]


def _own_flags(flag_values: flags.FlagValues, owner_flag: str) -> list[str]:
  module = flag_values.find_module_defining_flag(owner_flag)
  defined = flag_values.flags_by_module_dict().get(module, [])
  return sorted({f.name for f in defined}) or sorted(flag_values)


def _config_keys() -> list[str]:
  return config_lib.all_keys(config_lib.ExperimentConfig())


def _example(flag) -> str:
  if flag.flag_type() == "bool":
    return "true"
  if flag.default not in (None, "", []):
    return str(flag.default)
  return {"int": "5", "float": "0.5"}.get(flag.flag_type(), "VALUE")
