"""Estimator plumbing: RunConfig and the Estimator, the modes, hooks,
distribution, preemption, warm start, continuous eval, export and predict.

This file imports no TensorFlow: run.py reads the mode names and options
before TensorFlow loads.
"""

import dataclasses

# The modes that train, and so write the model_dir's config and run record;
# run.MODES lists every mode with the function that runs it.
TRAIN_MODES = ("train_and_eval", "train")


@dataclasses.dataclass(frozen=True)
class RunOptions:
  """What a run takes besides the config and the model_dir (from flags)."""
  data_dir: str | None = None
  warm_start_from: str | None = None     # Train modes.
  allow_config_change: bool = False      # Train modes.
  resume_from_previous: bool = False     # Train modes.
  images: tuple[str, ...] = ()           # predict: --images values.
  top_k: int = 5                         # predict.
  output: str = "table"                  # predict: table or json.
  split: str | None = None               # eval: validation or test.
