"""Train, evaluate, export and predict CIFAR classifiers.

  python -m estimator_cifar.run --experiment=resnet_sgd        # train and eval
  python -m estimator_cifar.run --mode=eval --model_dir=runs/resnet_sgd
  python -m estimator_cifar.run --mode=calibrate --model_dir=runs/NAME  # needs
      # data.validation_size > 0: a temperature for calibrated probabilities
  python -m estimator_cifar.run --list_experiments             # what to run
  python -m estimator_cifar.run --list_params                  # every field

Config fields change with --params_override=train.steps=1000 or a JSON
--config_file (a run's config.json reruns that run). A mistake ends with one
`error:` paragraph and exit status 2; --verbose shows everything.
"""

import os
import signal
import sys
import traceback

# Quiet TensorFlow's C++ logs unless the user asked for them: level 2 would
# still print TF 2.15's three harmless "Unable to register cuDNN/cuFFT/cuBLAS
# factory" errors at import; real failures still arrive as Python exceptions.
# TF_CPP_MIN_LOG_LEVEL=0 in the environment shows everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402

from estimator_cifar import config as config_lib  # noqa: E402
from estimator_cifar import (config_help, console, errors,  # noqa: E402
                             experiment_files, flag_errors, paths, rundir)
from estimator_cifar.engine import TRAIN_MODES, RunOptions, signals  # noqa: E402
from estimator_cifar.errors import UserError  # noqa: E402
from estimator_cifar.rundir import checkpoint_check, disk_space, recorded  # noqa: E402


# The engine modules import TensorFlow: each runner imports its own when called,
# after the TF-free checks.
def _modes(mode):
  def run_mode(cfg, model_dir, o: RunOptions):
    from estimator_cifar.engine import modes
    return modes.run(cfg, model_dir, mode, o.data_dir,
                     warm_start_from=o.warm_start_from,
                     allow_config_change=o.allow_config_change,
                     resume_from_previous=o.resume_from_previous,
                     split=o.split)
  return run_mode


def _export(cfg, model_dir, o: RunOptions):
  from estimator_cifar.engine import export
  from estimator_cifar.rundir import lock
  lock.check_is_run_or_empty(model_dir)
  with lock.held(model_dir, lock.EXPORT), disk_space.writes_into(model_dir):
    return export.run_export(cfg, model_dir, o.data_dir)


def _predict(cfg, model_dir, o: RunOptions):
  from estimator_cifar.engine import predict
  return predict.run_predict(cfg, model_dir, o.images, o.data_dir, o.top_k,
                             o.output)


# Every mode and what runs it: `MODES[mode](cfg, model_dir, options)`.
MODES = {"train_and_eval": _modes("train_and_eval"), "train": _modes("train"),
         "eval": _modes("eval"), "continuous_eval": _modes("continuous_eval"),
         "calibrate": _modes("calibrate"), "export": _export,
         "predict": _predict}

FLAGS = flags.FLAGS
flags.DEFINE_string("experiment", None, "Experiment name (--list_experiments), "
                    "path to an experiment file, or a run's config.json.")
flags.DEFINE_multi_string("experiments_dir", [], "Also look for experiment "
                          "names in this folder (repeatable; before "
                          "$ESTIMATOR_CIFAR_EXPERIMENTS and the built-ins).")
flags.DEFINE_bool("list_experiments", False, "List experiments and exit.")
flags.DEFINE_bool("list_params", False, "Print every config field with its "
                  "value (of --experiment, or the defaults), type, allowed "
                  "values and meaning, and exit.")
flags.DEFINE_string("model_dir", None, "Checkpoints, events and logs; default "
                    "runs/<experiment>.")
flags.DEFINE_string("data_dir", None, "Where CIFAR data lives or is downloaded "
                    "to; default ~/.cache/estimator_cifar.")
flags.DEFINE_enum("mode", "train_and_eval", list(MODES), "What to run.")
flags.DEFINE_string("config_file", None, "A JSON file of config fields in "
                    "config.json's format, applied before --params_override.")
flags.DEFINE_multi_string("params_override", [], "Config overrides "
                          "a.b=v,c.d=w (repeatable).")
flags.DEFINE_string("warm_start_from", None, "Train modes: initialize from this "
                    "checkpoint prefix or directory (its newest checkpoint); "
                    "see warm_start.* for which variables. Skipped on resume.")
flags.DEFINE_bool("allow_config_change", False, "Train modes: continue in a "
                  "model_dir whose config.json names another model or classes.")
flags.DEFINE_bool("resume_from_previous", False, "Train modes: if the newest "
                  "checkpoint in --model_dir is damaged, move it aside and "
                  "resume from the newest complete one.")
flags.DEFINE_multi_string("images", [], "--mode=predict: PNG or JPEG files "
                          "and/or directories; repeat the flag or separate "
                          "with commas (a name holding a comma is taken "
                          "whole when it exists).")
flags.DEFINE_enum("split", "test", ["test", "validation"], "--mode=eval: the "
                  "split to score (validation: the images data.validation_size "
                  "held out of training).")
flags.DEFINE_integer("top_k", 5, "--mode=predict: classes shown per image.")
flags.DEFINE_enum("output", "table", ["table", "json"], "--mode=predict: format.")
flags.DEFINE_bool("verbose", False, "Show everything: the whole config, "
                  "TensorFlow's warnings, and tracebacks for user errors.")


# Flags that only some modes read: given to another mode they would be
# silently ignored, so they are refused instead.
MODE_FLAGS = {"split": ("eval",), "images": ("predict",), "top_k": ("predict",),
              "output": ("predict",), "warm_start_from": TRAIN_MODES,
              "allow_config_change": TRAIN_MODES,
              "resume_from_previous": TRAIN_MODES}


def _check_mode_flags(mode: str) -> None:
  for name, modes in MODE_FLAGS.items():
    if FLAGS[name].present and mode not in modes:
      raise UserError(
          f"--{name} is read by --mode={' or --mode='.join(modes)} only, and "
          f"this is --mode={mode}: drop --{name}, or run one of those modes.")


def main(argv):
  if len(argv) > 1:
    raise UserError(f"Unexpected arguments {' '.join(argv[1:])}: every option "
                    "is a --flag; see -h.")
  _check_mode_flags(FLAGS.mode)
  experiment_files.add_dirs(
      [d for flag in FLAGS.experiments_dir for d in flag.split(os.pathsep)])
  if FLAGS.list_experiments:
    for name, summary in config_lib.list_experiments().items():
      print(f"{name:24s} {summary}")
    return 0
  # The shell leaves `~` after `=` alone: expand it here, once, for every path.
  model_dir = paths.expand(FLAGS.model_dir)
  config_file = paths.expand(FLAGS.config_file)
  if FLAGS.list_params and not FLAGS.experiment and FLAGS.mode in TRAIN_MODES:
    # No experiment: the defaults every experiment starts from.
    return _list_params(config_lib.resolve(None, FLAGS.params_override,
                                           config_file))
  cfg, data_dir = recorded.setup(FLAGS.mode, model_dir, FLAGS.experiment,
                                 FLAGS.params_override,
                                 paths.expand(FLAGS.data_dir), config_file)
  if FLAGS.list_params:
    return _list_params(cfg)
  model_dir = model_dir or os.path.join("runs", cfg.name)
  if FLAGS.mode in TRAIN_MODES:
    checkpoint_check.check_writable(model_dir)
    logging.info("Config: %s (all fields: %s)", config_help.changes(
        config_lib.load_experiment(FLAGS.experiment), cfg),
        os.path.join(model_dir, rundir.CONFIG_FILE))
  options = RunOptions(
      data_dir=data_dir, warm_start_from=paths.expand(FLAGS.warm_start_from),
      allow_config_change=FLAGS.allow_config_change,
      resume_from_previous=FLAGS.resume_from_previous,
      images=tuple(FLAGS.images), top_k=FLAGS.top_k, output=FLAGS.output,
      split=FLAGS.split)
  memory = {key: config_lib.get(cfg, key) for key in errors.MEMORY_SETTINGS}
  with errors.memory_errors_named(memory):
    MODES[FLAGS.mode](cfg, model_dir, options)
  return 0


def _list_params(cfg: config_lib.ExperimentConfig) -> int:
  print("\n".join(config_help.list_params(cfg)))
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
  except BrokenPipeError:
    # Whoever read stdout has gone (`| head`): stop quietly, as Unix tools
    # do, and keep Python from complaining again when it flushes at exit.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(128 + signal.SIGPIPE)
  except (KeyboardInterrupt, signals.Stopped) as e:
    # A signal before training could stop in order (start-up, graph
    # construction): there is no step to save.
    if FLAGS.verbose:
      traceback.print_exc()
    stopped = e if isinstance(e, signals.Stopped) else signals.Stopped("SIGINT")
    print(f"{stopped.run_status.capitalize()} ({stopped.signal_name}) before "
          "training started; nothing was saved by this run.",
          file=sys.stderr, flush=True)
    sys.exit(stopped.exit_code)


def cli():
  logging.set_verbosity(logging.INFO)
  app.run(_with_console, flags_parser=flag_errors.parser(FLAGS, "experiment"))


def _with_console(argv):
  """run_main() with TensorFlow's chatter hidden unless --verbose."""
  if FLAGS.verbose:
    logging.set_verbosity(logging.DEBUG)
  else:
    console.quiet()
  return run_main(argv)


if __name__ == "__main__":
  cli()
