"""The package's version, in a module that imports nothing.

Its one home: `estimator_cifar/__init__.py` and the run record import it, and
setup.py reads it as text; no module imports the package's `__init__` for it.
"""

__version__ = "0.1.0"
