"""What the sandbox knows about its isolation layers: the `SandboxInfo` record and the cheap facts it rests on.

The bottom of the sandbox package: `spawn` (which starts children with a given `SandboxInfo`) and `probe`
(which finds the layers that work, by spawning a probe child) both import it, so neither imports the other
backwards. Public names are re-exported by `sdbench.sandbox.probe` and `sdbench.sandbox`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

CHILD_DIR = os.path.dirname(os.path.realpath(__file__))
LAYERS = ("process", "env", "setsid", "rlimits", "timeout", "bwrap", "pidns", "netns", "uid", "nproc",
          "cgroup", "landlock", "seccomp")


@dataclass(frozen=True)
class Layer:
    name: str
    active: bool
    detail: str


@dataclass
class SandboxInfo:
    """The layers in force for every sandboxed run of this process."""

    layers: dict[str, Layer]
    bwrap: str | None = None            # path of a working bwrap
    landlock_abi: int | None = None
    seccomp: bool = False
    uid_mode: str | None = None         # "inside" (drop in the child) | "popen" | None
    cgroup_base: str | None = None      # a pids-controller directory where each run gets a cgroup
    memcg_base: str | None = None       # the same for the memory controller (may equal cgroup_base on v2)
    cpucg_base: str | None = None       # and for the cpu controller (a CPU quota per run)
    runtime_roots: list[str] = field(default_factory=list)

    def active(self) -> tuple[str, ...]:
        return tuple(name for name, layer in self.layers.items() if layer.active)

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {n: {"active": la.active, "detail": la.detail} for n, la in self.layers.items()}


def disabled() -> set[str]:
    return {p.strip() for p in os.environ.get("SDBENCH_SANDBOX_DISABLE", "").split(",") if p.strip()}


def runtime_roots() -> list[str]:
    """Directories the sandboxed interpreter must read: the Python installation(s) and this package."""
    exe_root = os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))
    cands = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix, exe_root)}
    cands |= {os.path.abspath(p) for p in (sys.prefix, sys.exec_prefix, CHILD_DIR)}
    cands.add("/usr")
    roots: list[str] = []
    for path in sorted(cands, key=len):
        if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            roots.append(path)
    return roots


def nproc_counts_alone(info: SandboxInfo) -> bool:
    """Whether RLIMIT_NPROC counts only the sandbox's processes: a fresh uid, or a fresh user namespace
    (unprivileged bwrap; per-namespace counting needs Linux >= 5.14). Root is exempt from it."""
    return info.uid_mode is not None or (os.geteuid() != 0 and info.bwrap is not None)
