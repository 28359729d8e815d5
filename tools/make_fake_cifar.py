"""Writes a dataset in the real CIFAR-10/100 binary layout (easy or noise).

The easy dataset (stripes and tints per class, with noise) is learnable in a
few hundred steps, so it checks that a recipe learns end to end without the
real data:

  python -m tools.make_fake_cifar --data_dir=/tmp/easy --train=10000
"""

import sys

if not __package__:  # Run as a file, where relative imports fail.
  print("error: run it with -m: python -m tools.make_fake_cifar", file=sys.stderr)
  sys.exit(2)

from absl import flags

from estimator_cifar import paths
from estimator_cifar.data import cifar, fake
from . import cli

FLAGS = flags.FlagValues()
flags.DEFINE_string("data_dir", None, "Where to write the dataset's folder.",
                    flag_values=FLAGS, required=True)
flags.DEFINE_enum("dataset", "cifar10", sorted(cifar.PUBLISHED), "Layout.",
                  flag_values=FLAGS)
flags.DEFINE_integer("train", 10000, "Train records.", flag_values=FLAGS)
flags.DEFINE_integer("test", 2000, "Test records.", flag_values=FLAGS)
flags.DEFINE_bool("noise", False, "Uniform noise instead of the easy task.",
                  flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Random seed.", flag_values=FLAGS)


def main(argv: list[str] | None = None) -> int:
  cli.parse(FLAGS, sys.argv[1:] if argv is None else argv, __doc__)
  data_dir, easy = paths.expand(FLAGS.data_dir), not FLAGS.noise
  if FLAGS.dataset == "cifar10":
    per_file = FLAGS.train // len(cifar.CIFAR10.train_files)
    folder = fake.write_cifar10(data_dir, per_file, FLAGS.test, easy,
                                FLAGS.seed)
  else:
    folder = fake.write_cifar100(data_dir, FLAGS.train, FLAGS.test, easy,
                                 FLAGS.seed)
  print(folder)
  return 0


if __name__ == "__main__":
  sys.exit(main())
