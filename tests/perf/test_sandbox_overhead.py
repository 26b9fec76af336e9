"""Per-program overhead of the sandbox: `run_program("pass")` with every available layer against a bare
``subprocess.run([sys.executable, "-c", "pass"])`` in the same process, interleaved round by round
so machine noise hits both alike. Reports medians, overhead (ms) and ratio in the benchmark's
extra_info and on stdout, plus the cost net of the sandbox's own interpreter flags (``-I -S``,
which skip site and so start faster than the baseline). Target: <= 40 ms median overhead with all layers active
(``SDBENCH_PERF_STRICT=1`` turns the target into an assertion).

Skipped by default (addopts has --benchmark-skip); run with
``pytest tests/perf/test_sandbox_overhead.py --benchmark-only -s`` (on a busy machine, prefixing
``chrt -f 10`` as root approximates an idle one).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import pytest

from sdbench.sandbox import run_program, run_tests, sandbox_info

ROUNDS = 40


def _interleaved(benchmark: pytest.FixtureRequest, fn: object, label: str) -> dict[str, float]:
    info = sandbox_info()  # probe once, outside the timing
    fn()  # type: ignore[operator]
    baseline: list[float] = []
    isolated: list[float] = []  # same interpreter flags as the sandbox uses, to show the layers' net cost

    def setup() -> None:
        for argv, out in (([sys.executable, "-c", "pass"], baseline), ([sys.executable, "-I", "-S", "-c", "pass"],
                                                                      isolated)):
            t0 = time.perf_counter()
            subprocess.run(argv, check=True)
            out.append(time.perf_counter() - t0)

    benchmark.pedantic(fn, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=0)  # type: ignore[attr-defined]
    sandbox_ms = benchmark.stats.stats.median * 1000  # type: ignore[attr-defined]
    base_ms = statistics.median(baseline) * 1000
    iso_ms = statistics.median(isolated) * 1000
    out = {"baseline_median_ms": round(base_ms, 2), "sandbox_median_ms": round(sandbox_ms, 2),
           "overhead_ms": round(sandbox_ms - base_ms, 2), "ratio": round(sandbox_ms / base_ms, 2),
           "python_I_S_median_ms": round(iso_ms, 2), "overhead_vs_python_I_S_ms": round(sandbox_ms - iso_ms, 2),
           "layers": ",".join(info.active()), "all_layers": all(la.active for la in info.layers.values())}
    benchmark.extra_info.update(out)  # type: ignore[attr-defined]
    print(f"\n{label}: {out}")
    return out


def test_run_program_overhead(benchmark: pytest.FixtureRequest) -> None:
    def once() -> None:
        result = run_program("pass")
        assert result.status == "ok", result

    out = _interleaved(benchmark, once, "run_program")
    if os.environ.get("SDBENCH_PERF_STRICT") == "1" and out["all_layers"]:
        assert out["overhead_ms"] <= 40.0, out


def test_run_tests_overhead(benchmark: pytest.FixtureRequest) -> None:
    """Grading starts two sandboxes (program and judge) in parallel; informational, no target."""

    def once() -> None:
        verdict = run_tests("def f(x):\n    return x\n", "assert f(1) == 1\n")
        assert verdict.passed, verdict

    _interleaved(benchmark, once, "run_tests")
