"""Command-line helpers around estimator_cifar; run each as `python -m tools.NAME`."""
