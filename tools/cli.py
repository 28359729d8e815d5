"""What the tools' command lines share: absl flags and one-line errors.

Each tool defines its flags on a `flags.FlagValues` of its own rather than on
the global `flags.FLAGS`, so tools can be imported side by side (tests do) and
their `main(argv)` called more than once in one process.
"""

import sys
from typing import Sequence

from absl import flags


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
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()  # Else absl logging warns on first use.
  return rest[1:]
