"""The sandbox for generated code: every program runs in a fresh, confined process, never here.

Public API (importing it does no work; layers are probed on first use and cached):

- `run_program(source, *, stdin=None, timeout=10.0, memory_mb=512) -> RunResult`: run a program
  as ``__main__``; status ok / error / timeout / memory / killed, exit code, output tails, layers.
- `run_tests(program, tests, *, timeout=10.0, memory_mb=512) -> SandboxRun`: grade a program against
  trusted assert-style tests; the verdict is decided by a separate judge process (`grading.py`).
- `run_tests_remembered(...)`: the same, graded once per process per (program, tests, limits)
  for pass/fail verdicts (deterministic tests; timeouts are always re-run).
- `call_each(jobs, *, timeout=10.0, memory_mb=512) -> list[JobResult]`: many small programs in ONE
  sandbox, each `Job` (program, entry, argument tuples) in its own forked process; return values
  come back as exact plain data for the caller to compare (`calls.py`). One start-up per batch.
- `sandbox_info(refresh=False) -> SandboxInfo`: which layers are active here and why others are not.

Programs run on the harness's interpreter with ``-I -S``: the standard library only, no
site-packages, no environment. Layers (each probed, degraded with a reason when unavailable):
fresh process and session, rlimits, wall timeout, bubblewrap (PID/net/IPC/UTS namespaces,
read-only runtime, 64 MiB tmpfs /tmp), a fresh uid per run, RLIMIT_NPROC, pids/memory/cpu
cgroups, Landlock and seccomp. ``SDBENCH_SANDBOX_REQUIRE=all`` refuses to run with fewer.

From the shell: ``sdbench sandbox info`` and ``sdbench sandbox run FILE [--tests T]``.
"""

from __future__ import annotations

from sdbench.sandbox.calls import Call, Job, JobResult, call_each
from sdbench.sandbox.grading import SandboxRun, free_names, run_tests, run_tests_remembered
from sdbench.sandbox.probe import Layer, SandboxInfo, sandbox_info
from sdbench.sandbox.runner import Limits, RunResult, run_program

__all__ = [
    "Call",
    "Job",
    "JobResult",
    "Layer",
    "Limits",
    "RunResult",
    "SandboxInfo",
    "SandboxRun",
    "call_each",
    "free_names",
    "run_program",
    "run_tests",
    "run_tests_remembered",
    "sandbox_info",
]
