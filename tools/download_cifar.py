"""Fetches, verifies and extracts a CIFAR binary dataset into a folder.

Usage (from the repository root):
  python -m tools.download_cifar --data_dir=/tmp/cifar --dataset=cifar10

Prints the extracted folder on stdout. Offline: copy the archive (e.g.
`cifar-10-binary.tar.gz`) into --data_dir first and this only verifies and
extracts it. A mirror: --url=<full archive URL> or $ESTIMATOR_CIFAR_MIRROR.
Failures print one paragraph on stderr and exit non-zero, without traceback.
"""

import sys

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.download_cifar", file=sys.stderr)
  sys.exit(2)

from absl import flags

from estimator_cifar import errors, paths
from estimator_cifar.data import cifar, download
from . import cli

FLAGS = flags.FlagValues()
flags.DEFINE_string("data_dir", None, "Folder for the archive and the "
                    "extracted data.", flag_values=FLAGS, required=True)
flags.DEFINE_enum("dataset", "cifar10", sorted(cifar.PUBLISHED), "Which one.",
                  flag_values=FLAGS)
flags.DEFINE_string("url", None, "Archive URL (http, https or file://); "
                    f"default: ${download.MIRROR_ENV}/<archive> or the "
                    "official one.", flag_values=FLAGS)
flags.DEFINE_string("sha256", None, "Expected archive sha256; default: the "
                    "real one.", flag_values=FLAGS)
flags.DEFINE_float("timeout", 10.0, "Socket timeout in seconds.",
                   flag_values=FLAGS)


def main(argv: list[str] | None = None) -> int:
  """Parses flags, ensures the dataset, returns the process exit code."""
  cli.parse(FLAGS, sys.argv[1:] if argv is None else argv, __doc__)
  try:
    folder = download.ensure_dataset(
        paths.expand(FLAGS.data_dir), FLAGS.dataset, url=FLAGS.url,
        timeout=FLAGS.timeout, sha256=FLAGS.sha256)
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
