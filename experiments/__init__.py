"""The built-in experiments, installed as `estimator_cifar.experiments`.

One file per experiment; `get_config()` returns a fresh ExperimentConfig.
Run `python -m estimator_cifar.run --list_experiments` to see them.
"""
