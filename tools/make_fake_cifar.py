"""Writes a dataset in the real CIFAR-10/100 binary layout (easy or noise).

The easy dataset (stripes and tints per class, with noise) is learnable in a
few hundred steps, so it checks that a recipe learns end to end without the
real data: `python tools/make_fake_cifar.py --data_dir=/tmp/easy --train=10000`.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from estimator_cifar.data import fake  # noqa: E402


def main():
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--data_dir", required=True)
  p.add_argument("--dataset", choices=["cifar10", "cifar100"], default="cifar10")
  p.add_argument("--train", type=int, default=10000, help="train records")
  p.add_argument("--test", type=int, default=2000, help="test records")
  p.add_argument("--noise", action="store_true", help="uniform noise, not easy")
  p.add_argument("--seed", type=int, default=0)
  a = p.parse_args()
  if a.dataset == "cifar10":
    folder = fake.write_cifar10(a.data_dir, a.train // 5, a.test, not a.noise, a.seed)
  else:
    folder = fake.write_cifar100(a.data_dir, a.train, a.test, not a.noise, a.seed)
  print(folder)


if __name__ == "__main__":
  main()
