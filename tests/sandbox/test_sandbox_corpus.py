"""The adversarial corpus: every program in `corpus/` must be contained and must never pass.

For each program: `run_program` ends in one of the statuses its `# expect-run:` header allows;
`run_tests` against tests the program does not solve fails; and afterwards the harness is alive
and unsignalled, the canary files are unchanged, the secret (in the harness's environment and in
a canary file) never shows up in the program's output, no connection reached the loopback
listener and the victim process is alive and running. Run: ``pytest tests/sandbox``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sandbox_targets import CORPUS, Targets

from sdbench.sandbox import run_program, run_tests, sandbox_info
from sdbench.sandbox._info import Layer, SandboxInfo

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


# Why a layer can be off (its `detail`, written by sdbench.sandbox.probe): the machine lacks it, or the sandbox
# tried and it broke. Only the first is a reason to skip; the second is a failure.
BROKEN = ("failed to apply", "could not join a cgroup", "failed to drop privileges",
          "does not start as an unprivileged uid")


def bwrap_runs_here() -> tuple[bool, str]:
    """Whether bubblewrap itself can make the namespaces the sandbox asks for (a container without user
    namespaces cannot), independently of sdbench: (works, why not)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bwrap not found on PATH"
    done = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent",
                           "true"], capture_output=True, text=True, timeout=30)
    return done.returncode == 0, done.stderr.strip() or f"exit {done.returncode}"


def degradation(info: SandboxInfo, bwrap_works: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(broken, unavailable): the inactive layers whose reason is a failure of the sandbox (a layer applied and
    refused, bwrap failing where bubblewrap itself runs, one of the layers every POSIX machine has), and those
    the machine genuinely lacks."""
    broken, unavailable = {}, {}
    for name, layer in info.layers.items():
        if layer.active:
            continue
        fails = (name in ALWAYS or any(b in layer.detail for b in BROKEN)
                 or (layer.detail.startswith("bwrap failed") and bwrap_works))
        (broken if fails else unavailable)[name] = layer.detail
    return broken, unavailable


ALWAYS = ("process", "env", "setsid", "rlimits", "timeout")     # plain POSIX: active on any machine


def test_degradation_tells_a_broken_layer_from_a_missing_one() -> None:
    def info(**details: str) -> SandboxInfo:
        return SandboxInfo(layers={n: Layer(n, n not in details, details.get(n, "ok")) for n in (*ALWAYS, *details)})

    lacking = info(bwrap="bwrap not found on PATH", landlock="kernel refuses landlock_create_ruleset: EINVAL",
                   cgroup="harness is not root (no delegated cgroup support)")
    assert degradation(lacking, bwrap_works=False) == ({}, {n: la.detail for n, la in lacking.layers.items()
                                                            if not la.active})
    failing = info(bwrap="bwrap failed: no report", seccomp="failed to apply: EINVAL",
                   cgroup="could not join a cgroup: EACCES", timeout="off")
    broken, unavailable = degradation(failing, bwrap_works=True)
    assert set(broken) == {"bwrap", "seccomp", "cgroup", "timeout"} and unavailable == {}
    assert degradation(failing, bwrap_works=False)[1] == {"bwrap": "bwrap failed: no report"}


def test_all_layers_active_here() -> None:
    """On the CI machine (root, bubblewrap installed, Landlock and seccomp in the kernel) nothing degrades.
    Elsewhere a layer may be off only because the machine lacks it (skipped, with the reason); a layer the
    sandbox tried and lost is a failure."""
    works, why = bwrap_runs_here()
    broken, unavailable = degradation(sandbox_info(), works)
    assert not broken, f"sandbox layers broken on this machine: {broken}"
    if unavailable:
        pytest.skip(f"this machine lacks sandbox layers: {unavailable}" + ("" if works else f" (bwrap: {why})"))


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
