"""Collection and summary for the perf benchmarks under tests/perf.

Run: pytest tests/perf --benchmark-only            (all; slow: minutes per configuration on CPU)
     pytest tests/perf --benchmark-only -k "N512"  (a subset)
Plain `pytest` collects these files too but pyproject's --benchmark-skip skips them.

Files named bench_*.py are collected as test modules here (pyproject's python_files keeps the
default test_*.py for the rest of the suite). Benchmarks append text rows to the list
`config.sdbench_bench_rows`; they are printed as one table at the end of the session.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.sdbench_bench_rows = []  # type: ignore[attr-defined]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    # A file named on the command line is collected by pytest itself: do not collect it twice.
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    rows = getattr(terminalreporter.config, "sdbench_bench_rows", [])
    if rows:
        terminalreporter.write_sep("=", "sdbench perf results (ratios measured in the same process)")
        for row in rows:
            terminalreporter.write_line(row)
