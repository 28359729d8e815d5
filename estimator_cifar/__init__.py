"""estimator_cifar: CIFAR experiments on TensorFlow's Estimator API."""

__version__ = "0.1.0"
