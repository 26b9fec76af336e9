"""`sdbench` command line with the toy fixtures (tests/toy_cli.py) plus test-only strategies that misbehave
the way a plugin can: block forever, allocate without bound, or get their worker killed.

    FAULTS_KILLS=/tmp/kills python tests/faults_cli.py run --tasks toy_pick --strategies suicidal ...

`suicidal` is grpo, except that while the file named by FAULTS_KILLS holds a number > 0 its first plan()
decrements it and SIGKILLs its own process (what the kernel's OOM killer does to a worker). With
FAULTS_FULL set, writes beside that file fail with ENOSPC while it exists (see _inject_full_disk).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import toy_cli  # noqa: E402,F401  (registers toy_pick, exploding, raising)

from sdbench.strategy import STRATEGIES, StrategyBase  # noqa: E402


class Hanging(StrategyBase):
    """Test-only: plan() blocks forever."""

    def plan(self, group):
        threading.Event().wait()


class Greedy(StrategyBase):
    """Test-only: plan() allocates (and touches) memory without bound."""

    def plan(self, group):
        hog = []
        while True:
            hog.append(b"x" * (32 * 2**20))


class Suicidal(STRATEGIES.get("grpo")):
    """Test-only: grpo whose worker is SIGKILLed while FAULTS_KILLS says so (see the module docstring)."""

    def plan(self, group):
        marks = Path(os.environ.get("FAULTS_KILLS", "/nonexistent"))
        if marks.is_file() and int(marks.read_text() or 0) > 0:
            marks.write_text(str(int(marks.read_text()) - 1))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().plan(group)


def _inject_full_disk() -> None:
    """Where a small tmpfs cannot be mounted: while the file FAULTS_FULL names exists, every fsync of a file
    in its directory fails with ENOSPC (as a write to a full disk does at the latest there)."""
    flag = os.environ.get("FAULTS_FULL")
    if not flag:
        return
    real, disk = os.fsync, str(Path(flag).parent)

    def fsync(fd: int) -> None:
        where = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.exists(flag) and where.startswith(disk + "/") and os.path.isfile(where):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    os.fsync = fsync


_inject_full_disk()
STRATEGIES.register("hanging", Hanging, distribution="sdbench-tests")
STRATEGIES.register("greedy", Greedy, distribution="sdbench-tests")
STRATEGIES.register("suicidal", Suicidal, distribution="sdbench-tests")

if __name__ == "__main__":
    from sdbench.cli import main

    main()
