"""Measurement scripts: how the figures in docs/ were measured.

`python -m tools.bench` lists them. Unlike the user's tools in `tools/`, these
exist to measure the package (speed, memory, fault tolerance, peers) and are
run as the documents that cite them say.
"""
