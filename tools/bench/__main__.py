"""Lists the measurement scripts, one line each: `python -m tools.bench`."""

import os

from .. import cli

if __name__ == "__main__":
  cli.print_tools(os.path.dirname(os.path.abspath(__file__)), __package__)
