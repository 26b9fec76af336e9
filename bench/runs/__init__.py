"""Runs: planning cells, executing them, the atomic run directory, aggregation and reports."""

from sdbench.runs.runner import run_suite

__all__ = ["run_suite"]
