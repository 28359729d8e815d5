"""Where `train.steps_per_loop` > 1 can run: the checks and their messages.

Shared by `config.validate` (the strategy named in the config) and
model/train_loop.py (a parameter-server cluster named by TF_CONFIG, known
only when the Estimator runs). No TensorFlow here: config imports it.
"""

from estimator_cifar.errors import ConfigError

# Strategies whose replicas combine their gradients at every step between
# the replicas' graphs: a loop inside one replica's graph cannot do that.
REFUSED_STRATEGIES = ("mirrored", "central_storage", "multi_worker_mirrored")


def check(cfg) -> None:
  """Refuses train.steps_per_loop > 1 under a strategy it cannot run under.

  Raises:
    ConfigError: naming the strategy and the fix.
  """
  k, strategy = cfg.train.steps_per_loop, cfg.distribute.strategy
  if k > 1 and strategy in REFUSED_STRATEGIES:
    raise ConfigError(
        f"train.steps_per_loop={k} cannot run under distribute.strategy="
        f"{strategy}: the Estimator builds one graph per replica and combines "
        "their gradients between those graphs at every step, which a loop "
        "inside one replica's graph cannot do. Set train.steps_per_loop=1 to "
        "keep the strategy, or distribute.strategy=default to loop on one "
        "device.")
  if k > 1 and strategy == "parameter_server":
    raise ConfigError(refused_on_ps(k))


def refused_on_ps(steps_per_loop: int) -> str:
  """The message for a loop in parameter-server training (also via TF_CONFIG)."""
  return (f"train.steps_per_loop={steps_per_loop} is not supported in "
          "parameter-server training (a TF_CONFIG cluster with 'ps' tasks): "
          "its workers update variables held by other tasks, and the loop is "
          "built and tested for variables on the training device only. Set "
          "train.steps_per_loop=1 for the cluster, or train on one machine "
          "without TF_CONFIG.")
