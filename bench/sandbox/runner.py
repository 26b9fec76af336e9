"""`run_program`: run one program in a fresh sandbox and say what happened to it.

Example: ``python -c "from sdbench.sandbox import run_program; print(run_program('print(1)'))"``;
from the shell, ``sdbench sandbox run prog.py``. The isolation itself lives in `spawn.py`
(process, uid, cgroups, bubblewrap) and `_child.py` (Landlock, seccomp, rlimits).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sdbench.sandbox.probe import sandbox_info
from sdbench.sandbox.spawn import Limits, classify, start

__all__ = ["Limits", "RunResult", "run_program"]


@dataclass(frozen=True)
class RunResult:
    """What happened to one program. `status`: ok | error | timeout | memory | killed."""

    status: str
    exit_code: int | None
    duration_s: float
    stdout_tail: str
    stderr_tail: str
    layers: tuple[str, ...]
    stdout_bytes: int = 0
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers)
        return d


def run_program(source: str, *, stdin: str | bytes | None = None, timeout: float = 10.0,
                memory_mb: int = 512) -> RunResult:
    """Run `source` as ``__main__`` in a fresh sandbox; never raises for anything the program does."""
    limits = Limits(timeout=timeout, memory_mb=memory_mb)
    data = stdin.encode("utf-8", "surrogateescape") if isinstance(stdin, str) else stdin
    t0 = time.monotonic()
    child = start("run", {"prog.py": source}, limits, info=sandbox_info(), stdin=data, extra={"program": "prog.py"})
    try:
        finished = child.wait(t0 + timeout)
        duration = time.monotonic() - t0
        status, rc, detail = classify(child, finished)
        out, nout = child.tail("stdout")
        err, _ = child.tail("stderr")
        return RunResult(status=status, exit_code=rc, duration_s=round(duration, 4), stdout_tail=out,
                         stderr_tail=err, layers=child.info.active(), stdout_bytes=nout, detail=detail)
    finally:
        child.cleanup()
