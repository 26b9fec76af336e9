"""Attack targets for the sandbox tests: canary files, a loopback listener, a victim process, a secret.

The corpus programs under `corpus/` mention `__CANARY__`, `__PORT__`, `__VICTIM__` and
`__HARNESS__`; `render()` fills them in so each attack aims at something real that the test then
checks is untouched. Run: ``pytest tests/sandbox`` (about a minute on 2 cores).
"""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
SECRET_ENV = "SDBENCH_SANDBOX_TEST_SECRET"


@dataclass
class Targets:
    canary: Path
    secret: str
    listener: socket.socket
    victim: subprocess.Popen[bytes]
    signals: list[int] = field(default_factory=list)

    def render(self, source: str) -> str:
        return (source.replace("__CANARY__", str(self.canary)).replace("__PORT__", str(self.listener.getsockname()[1]))
                .replace("__VICTIM__", str(self.victim.pid)).replace("__HARNESS__", str(os.getpid())))

    def snapshot(self) -> dict[str, tuple[int, str]]:
        out = {}
        for path in sorted(self.canary.rglob("*")):
            out[str(path)] = (path.stat().st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
        out["."] = (self.canary.stat().st_mode, "")
        return out

    def connections(self) -> int:
        n = 0
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return n
            conn.close()
            n += 1

    def harness_state(self) -> tuple[object, ...]:
        """What a sandbox could degrade without signals: our rlimits, CPU affinity and niceness."""
        return (resource.getrlimit(resource.RLIMIT_NOFILE), os.sched_getaffinity(0),
                os.getpriority(os.PRIO_PROCESS, 0), os.getpriority(os.PRIO_PROCESS, self.victim.pid))

    def victim_ok(self) -> bool:
        if self.victim.poll() is not None:
            return False
        state = Path(f"/proc/{self.victim.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("T", "t")
