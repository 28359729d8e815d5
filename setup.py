"""estimator_cifar: CIFAR image classifiers on TensorFlow's Estimator API."""

import re

from setuptools import find_packages, setup

with open("estimator_cifar/version.py") as f:
  VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

# tf.estimator is gone from TensorFlow >= 2.16: 2.15 is the last line with it.
# tensorflow-metadata > 1.16.1 (pulled by tensorflow-datasets) imports
# protobuf's runtime_version, which TF 2.15's protobuf 4.x lacks.
# tensorboard 2.15 imports pkg_resources, which setuptools 82 removed: without
# the pin `tensorboard --logdir ...` fails at start (tensorflow/tensorboard#7003).
INSTALL_REQUIRES = [
    "tensorflow>=2.15,<2.16",
    "tensorflow-estimator>=2.15,<2.16",
    "numpy<2",
    "absl-py",
    "tensorflow-datasets>=4.9,<4.10",
    "tensorflow-metadata==1.16.1",
    "setuptools<82",
]
# Only tools/ and the tests use these; tools name the extra when one is missing
# (estimator_cifar/extras.py).
TOOLS_REQUIRE = ["matplotlib", "psutil"]
# Top-level folders installed as subpackages of estimator_cifar.
PACKAGE_DIRS = {"estimator_cifar.experiments": "experiments",
                "estimator_cifar.tools": "tools",
                "estimator_cifar.tools.bench": "tools/bench"}
# export.formats=onnx (engine/export_formats.py). The newest onnx imports an
# ml_dtypes newer than TensorFlow 2.15's pin and fails at import; 1.16.2 works.
EXPORT_REQUIRE = ["tf2onnx==1.17.0", "onnx==1.16.2", "onnxruntime"]

setup(
    name="estimator_cifar",
    version=VERSION,
    description="CIFAR experiments on TensorFlow's Estimator API: run, resume, "
                "evaluate, warm-start and scale without writing the plumbing.",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    # The built-in experiments and the tools stay in their top-level folders
    # and install inside the package, never as top-level `experiments` or
    # `tools` packages: `python -m estimator_cifar.tools` lists the tools.
    packages=find_packages(include=["estimator_cifar", "estimator_cifar.*"])
    + list(PACKAGE_DIRS),
    package_dir=PACKAGE_DIRS,
    package_data={"estimator_cifar.tools.bench": ["*.sh"]},
    python_requires=">=3.10,<3.12",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "tools": TOOLS_REQUIRE,
        "export": EXPORT_REQUIRE,
        # The tests exercise the export formats too.
        "test": ["pytest", "pytest-xdist", "pytest-timeout", "hypothesis",
                 "ruff"] + TOOLS_REQUIRE + EXPORT_REQUIRE,
        # On a CUDA machine: pip install -e '.[gpu]' brings the CUDA libraries.
        "gpu": ["tensorflow[and-cuda]>=2.15,<2.16"],
    },
    entry_points={"console_scripts": [
        "estimator-cifar=estimator_cifar.run:cli"]},
)
