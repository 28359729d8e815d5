"""Fetches, verifies and extracts a CIFAR binary dataset into a folder.

Usage (from a checkout, no install needed):
  python tools/download_cifar.py --data_dir=/tmp/cifar --dataset=cifar10

Prints the extracted folder on stdout. Offline: copy the archive (e.g.
`cifar-10-binary.tar.gz`) into --data_dir first and this only verifies and
extracts it. A mirror: --url=<full archive URL> or $ESTIMATOR_CIFAR_MIRROR.
Failures print one paragraph on stderr and exit non-zero, without traceback.
"""

import argparse
import os
import sys

# Run from a checkout: the repository root holds the `estimator_cifar` package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from estimator_cifar import errors  # pylint: disable=g-import-not-at-top
from estimator_cifar.data import download  # pylint: disable=g-import-not-at-top


def main(argv: list[str] | None = None) -> int:
  """Parses flags, ensures the dataset, returns the process exit code."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", required=True,
                      help="Folder for the archive and the extracted data.")
  parser.add_argument("--dataset", default="cifar10",
                      choices=sorted(download.DATASETS))
  parser.add_argument("--url", default=None,
                      help="Archive URL (http, https or file://); default: "
                      f"${download.MIRROR_ENV}/<archive> or the official one.")
  parser.add_argument("--sha256", default=None,
                      help="Expected archive sha256; default: the real one.")
  parser.add_argument("--timeout", type=float, default=10.0,
                      help="Socket timeout in seconds.")
  args = parser.parse_args(argv)
  try:
    folder = download.ensure_dataset(args.data_dir, args.dataset, url=args.url,
                                     timeout=args.timeout, sha256=args.sha256)
  except errors.UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return e.exit_code
  except KeyboardInterrupt:
    print("error: interrupted; no partial file was left under the final "
          "names. Run again to start over.", file=sys.stderr)
    return 130
  print(folder)  # Only the path on stdout, so scripts can capture it.
  return 0


if __name__ == "__main__":
  sys.exit(main())
