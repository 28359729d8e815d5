"""Measurement scripts: speed figures for docs/performance.md."""
