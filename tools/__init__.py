"""The user's tools around estimator_cifar: `python -m tools` lists them.

Run each as `python -m tools.NAME` from a checkout, or as
`python -m estimator_cifar.tools.NAME` after `pip install '.[tools]'` (setup.py
installs this folder inside the package, as it does experiments/). The
measurement scripts that produced the figures in docs/ are apart, in
`tools/bench/` (`python -m tools.bench` lists them).
"""
