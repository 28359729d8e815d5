"""Lists the user's tools, one line each: `python -m tools`."""

import os

from . import cli

if __name__ == "__main__":
  cli.print_tools(os.path.dirname(os.path.abspath(__file__)), __package__)
  print(f"\nMeasurement scripts: python -m {__package__}.bench")
