"""The config of a mode that reads a trained model_dir: the one training used.

`eval`, `continuous_eval`, `export`, `predict` and `calibrate` on a model_dir with a
`config.json` rebuild the model exactly as it was trained (model, classes,
EMA choice, data), whatever the experiment file says today; overrides still
apply on top. Without a recorded config they fall back to `--experiment`.
"""

import os

from absl import logging

from estimator_cifar import config as config_lib
from estimator_cifar import rundir
from estimator_cifar.data import cifar, cifar_binary
from estimator_cifar.errors import CheckpointError, ConfigError, DataError
from estimator_cifar.rundir import run_record

# The modes that read a trained model_dir rather than write one.
READING_MODES = ("eval", "continuous_eval", "export", "predict", "calibrate")


def setup(mode: str, model_dir: str | None, experiment: str | None,
          overrides: list[str], data_dir: str | None,
          config_file: str | None = None
          ) -> tuple[config_lib.ExperimentConfig, str | None]:
  """The resolved config and data_dir for running `mode` on `model_dir`.

  Args:
    mode: the mode to run.
    model_dir: the run's folder; None for the default.
    experiment: `--experiment`, a name or a file; may be None when `model_dir`
      has a recorded config. Ignored, with a warning, if it names another
      experiment than the one recorded.
    overrides: `--params_override` strings, applied on top of either.
    data_dir: an explicit data_dir wins over the one training recorded.
    config_file: `--config_file`, applied to the experiment before overrides
      (not to a recorded config).

  Raises:
    ConfigError: no experiment to resolve, or a bad override or config.json.
    CheckpointError: the model_dir of eval, export or predict does not exist.
  """
  cfg = None
  if mode in READING_MODES and model_dir:
    # continuous_eval may start before its trainer makes the folder: it waits.
    if mode != "continuous_eval" and not os.path.isdir(model_dir):
      raise CheckpointError(
          f"--model_dir={model_dir} does not exist, so there is no trained "
          f"run to {mode.replace('_', ' ')}. Check the path, or train there "
          f"first: --experiment=NAME --model_dir={model_dir}.")
    if experiment:  # Its file may register the network the run was built with.
      config_lib.load_experiment(experiment)
    cfg = run_record.recorded_config(model_dir, overrides)
  if cfg is None:
    if not experiment:
      where = (f" ({model_dir} has no {rundir.CONFIG_FILE} to take it "
               "from)" if mode in READING_MODES and model_dir else "")
      raise ConfigError(f"Pass --experiment=NAME{where} (in Python: "
                        "experiment=NAME); --list_experiments shows the names.")
    return config_lib.resolve(experiment, overrides, config_file), data_dir
  logging.info("Using the config training recorded in %s.",
               os.path.join(model_dir, rundir.CONFIG_FILE))
  requested = os.path.splitext(os.path.basename(experiment or ""))[0]
  if requested and requested != cfg.name:
    logging.warning("--experiment=%s ignored: %s was trained as %s, and its "
                    "recorded config is used.", experiment, model_dir, cfg.name)
  return cfg, data_dir or _recorded_data_dir(cfg, model_dir)


def _recorded_data_dir(cfg: config_lib.ExperimentConfig,
                       model_dir: str) -> str | None:
  """The data_dir training recorded, if the dataset is there already.

  A run_info.json from elsewhere may name any folder: read from it, never
  download into it (None falls back to the default data_dir).
  """
  recorded = run_record.recorded_data_dir(model_dir)
  if (recorded is None or cfg.data.source != "binary"
      or cfg.data.name not in cifar.PUBLISHED):
    return recorded  # The binary CIFAR files are the only ones read from it.
  try:
    cifar_binary.locate(recorded, cifar.DATASETS[cfg.data.name], download=False)
  except DataError as e:
    logging.warning("Not using the data_dir recorded in %s: %s", model_dir, e)
    return None
  return recorded
