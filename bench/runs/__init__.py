"""Runs: planning cells, executing them, the atomic run directory, aggregation and reports.

`from sdbench.runs import run_suite` loads the runner on first use: importing a light module of
this package (record, aggregate) does not pull in torch or the executors.
"""

from typing import Any

__all__ = ["run_suite"]


def __getattr__(name: str) -> Any:
    if name == "run_suite":
        from sdbench.runs.runner import run_suite

        return run_suite
    raise AttributeError(f"module 'sdbench.runs' has no attribute {name!r}")
