"""`sdbench run`: plan cells (strategy x task x seed), run them, aggregate, print the table."""

from __future__ import annotations


def run_command() -> None:
    """Run the benchmark suite."""
