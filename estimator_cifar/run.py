"""Entry point: `python -m estimator_cifar.run --experiment=resnet_sgd`.

Parses flags, resolves the experiment config (defaults -> overrides ->
validation) and hands over to `train_lib.run`. User errors print one paragraph
and exit 2; `--verbose` adds the traceback.
"""

import os
import sys
import traceback

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from estimator_cifar import config as config_lib  # noqa: E402
from estimator_cifar.errors import UserError  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("experiment", None, "Experiment name (experiments/NAME.py) "
                    "or path to an experiment file.")
flags.DEFINE_bool("list_experiments", False, "List experiments and exit.")
flags.DEFINE_bool("list_params", False, "Print every config field of "
                  "--experiment with its value (after overrides) and exit.")
flags.DEFINE_string("model_dir", None, "Checkpoints, events and logs; default "
                    "runs/<experiment>.")
flags.DEFINE_string("data_dir", None, "Where CIFAR data lives or is downloaded "
                    "to; default ~/.cache/estimator_cifar.")
flags.DEFINE_enum("mode", "train_and_eval",
                  ["train_and_eval", "train", "eval", "continuous_eval"],
                  "What to run.")
flags.DEFINE_multi_string("params_override", [], "Config overrides "
                          "a.b=v,c.d=w (repeatable).")
flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors too.")


def main(argv):
  if len(argv) > 1:
    raise UserError(f"Unexpected arguments {' '.join(argv[1:])}: every option "
                    "is a --flag; see --helpfull.")
  if FLAGS.list_experiments:
    for name, summary in config_lib.list_experiments().items():
      print(f"{name:24s} {summary}")
    return 0
  if not FLAGS.experiment:
    raise UserError("Pass --experiment=NAME (see --list_experiments).")
  cfg = config_lib.resolve(FLAGS.experiment, FLAGS.params_override)
  if FLAGS.list_params:
    for key in config_lib.all_keys(cfg):
      print(f"{key} = {config_lib.get(cfg, key) if '.' in key else getattr(cfg, key)!r}")
    return 0
  model_dir = FLAGS.model_dir or os.path.join("runs", cfg.name)
  from estimator_cifar import train_lib  # Imports TensorFlow: after the checks.
  train_lib.run(cfg, model_dir, FLAGS.mode, FLAGS.data_dir)
  return 0


def run_main(argv):
  """main() with user errors as one paragraph on stderr and exit status 2."""
  try:
    return main(argv)
  except UserError as e:
    if FLAGS.verbose:
      traceback.print_exc()
    print(f"error: {e}", file=sys.stderr, flush=True)
    logging.flush()
    sys.exit(e.exit_code)


def cli():
  logging.set_verbosity(logging.INFO)
  app.run(run_main)


if __name__ == "__main__":
  cli()
