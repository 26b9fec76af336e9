"""The adversarial corpus: every program in `corpus/` must be contained and must never pass.

For each program: `run_program` ends in one of the statuses its `# expect-run:` header allows;
`run_tests` against tests the program does not solve fails; and afterwards the harness is alive
and unsignalled, the canary files are unchanged, the secret (in the harness's environment and in
a canary file) never shows up in the program's output, no connection reached the loopback
listener and the victim process is alive and running. Run: ``pytest tests/sandbox``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sandbox_targets import CORPUS, Targets

from sdbench.sandbox import run_program, run_tests, sandbox_info

PROGRAMS = sorted(p for p in CORPUS.glob("*.py"))
TESTS = "assert f(2) == 4\nassert f(10) == 20\n"
TIMEOUT = 2.0


def expected_statuses(source: str) -> set[str]:
    match = re.search(r"^# expect-run: (.+)$", source, re.M)
    assert match, "corpus programs declare '# expect-run: STATUS ...'"
    return set(match.group(1).split())


def timeout_for(source: str) -> float:
    """`# timeout: S` in a program's header overrides the default (page-zeroing is slow on a busy VM)."""
    match = re.search(r"^# timeout: ([0-9.]+)$", source, re.M)
    return float(match.group(1)) if match else TIMEOUT


def test_corpus_is_big_enough() -> None:
    assert len(PROGRAMS) >= 25


def test_all_layers_active_here() -> None:
    """On the CI machine (root, bubblewrap installed, Landlock and seccomp in the kernel) nothing degrades."""
    info = sandbox_info()
    missing = {n: la.detail for n, la in info.layers.items() if not la.active}
    if missing:
        pytest.skip(f"degraded sandbox on this machine: {missing}")


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_contained(path: Path, targets: Targets) -> None:
    layers = sandbox_info().layers
    if not (layers["bwrap"].active or layers["landlock"].active):
        pytest.skip("no filesystem isolation here (neither bwrap nor Landlock): nothing to test but failures")
    if "fork" in path.stem and not (layers["nproc"].active or layers["cgroup"].active):
        pytest.skip("no process-count limit here (RLIMIT_NPROC or a pids cgroup): a fork bomb would hurt the host")
    source = targets.render(path.read_text())
    before = targets.snapshot()
    harness = targets.harness_state()

    with ThreadPoolExecutor(2) as pool:  # both at once: halves the wall time of the programs that time out
        run = pool.submit(run_program, source, timeout=timeout_for(source), memory_mb=256)
        grade = pool.submit(run_tests, source, TESTS, timeout=timeout_for(source), memory_mb=256)
        result, verdict = run.result(), grade.result()

    assert result.status in expected_statuses(source), result
    assert not verdict.passed, verdict
    assert verdict.status in {"fail", "error", "timeout", "memory", "killed"}, verdict
    assert targets.snapshot() == before, "files outside the sandbox changed"
    assert targets.connections() == 0, "a connection reached the host's loopback"
    assert targets.victim_ok(), "the victim process was killed or stopped"
    assert targets.harness_state() == harness, "the harness's rlimits, affinity or priority changed"
    assert targets.signals == [], f"the harness received signals {targets.signals}"
    output = result.stdout_tail + result.stderr_tail + verdict.stdout_tail + verdict.stderr_tail
    assert targets.secret not in output, "the harness's secret leaked"
    for marker in ("WROTE", "CONNECTED", "SOCKETPAIR", "READ /etc/shadow", "MEM", "CHANGED", "READ DEVICE"):
        assert marker not in output, output


# The same attacks with bubblewrap switched off (no PID/net namespaces, no uid drop when the runtime
# is not world-readable): Landlock, seccomp, the cgroup and rlimits must still contain them. The
# pure-timeout programs are left out to keep the suite fast; they test nothing bwrap-specific.
SLOW = {"infinite_loop", "sleep_forever", "endless_thread", "deep_recursion"}
DEGRADED = [p for p in PROGRAMS if p.stem not in SLOW]


@pytest.fixture(scope="module")
def without_bwrap() -> Iterator[None]:
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SDBENCH_SANDBOX_DISABLE", "bwrap")
            info = sandbox_info(refresh=True)
            if not (info.layers["landlock"].active and info.layers["seccomp"].active):
                pytest.skip("without bwrap, containment relies on Landlock and seccomp, unavailable here")
            yield
    finally:
        sandbox_info(refresh=True)  # back to this machine's real configuration


@pytest.mark.parametrize("path", DEGRADED, ids=[p.stem for p in DEGRADED])
def test_contained_without_bwrap(path: Path, targets: Targets, without_bwrap: None) -> None:
    assert not sandbox_info().layers["bwrap"].active
    test_contained(path, targets)
