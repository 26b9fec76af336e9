"""`call_each`: many small programs, each called on its inputs in its own process, in one sandbox.

Grading a group of short candidate functions one sandbox each costs a sandbox start-up (~50-90 ms)
per program; here one sandbox forks a fresh process per job (~1-2 ms), so a training step's whole
batch of programs costs one start-up. Example::

    from sdbench.sandbox.calls import Job, call_each
    [result] = call_each([Job("def f(x):\\n    return sorted(x)\\n", "f", (([3, 1, 2],),))])
    result.status, result.calls[0].value     # ("ok", [1, 2, 3])

Isolation (`_calls.py` has the inside): a job's program runs only in its own forked process, which
holds neither the report fd nor any other job's pipe, so it can misreport only its own return
values, and those arrive here as plain data decoded by exact type (`_wire.py`): an object that
claims to equal everything arrives as `kind="opaque"` and equals nothing. Comparing with expected
values is the caller's job and happens here, outside the sandbox. If the batch as a whole gives no
report (a program killed the harness inside, or the run hit its deadline), every job is run again
in a sandbox of its own, so one hostile program cannot fail the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sdbench.sandbox import _wire
from sdbench.sandbox.probe import sandbox_info
from sdbench.sandbox.spawn import Limits, start

__all__ = ["Call", "Job", "JobResult", "call_each"]

STARTUP_SLACK_S = 5.0   # the sandbox's own start-up and the report, on a loaded machine


@dataclass(frozen=True)
class Job:
    """Run `program`, then call its global `entry(*args)` for each argument tuple in `inputs`."""

    program: str
    entry: str
    inputs: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Call:
    """One call's outcome. `kind`: ok (returned plain data, `value`) | opaque (returned another
    object) | raises (`text` is the exception type). `text` is the value's repr cut to 200 chars."""

    kind: str
    value: Any = None
    text: str = ""


@dataclass(frozen=True)
class JobResult:
    """`status`: ok (`calls` has one Call per input) | broken (running the program or finding the
    entry raised; `detail` is the exception type) | timeout | too_large | died | error."""

    status: str
    calls: tuple[Call, ...] = ()
    detail: str = ""


def call_each(jobs: Sequence[Job], *, timeout: float = 10.0, memory_mb: int = 512) -> list[JobResult]:
    """Run every job in its own process inside one sandbox; `timeout` and `memory_mb` are per job."""
    if not jobs:
        return []
    payload = json.dumps([{"program": j.program, "entry": j.entry,
                           "inputs": [_wire.encode(tuple(args)) for args in j.inputs]} for j in jobs])
    limits = Limits(timeout=timeout * len(jobs) + STARTUP_SLACK_S, memory_mb=memory_mb)
    t0 = time.monotonic()
    child = start("calls", {"jobs.json": payload}, limits, info=sandbox_info(),
                  extra={"jobs": "jobs.json", "job_timeout": timeout})
    try:
        report = child.report() if child.wait(t0 + limits.timeout) else None
    finally:
        child.cleanup()
    results = _parse_report(report, jobs)
    if results is not None:
        return results
    if len(jobs) == 1:
        return [JobResult("error", detail="the sandbox gave no report")]
    return [call_each([job], timeout=timeout, memory_mb=memory_mb)[0] for job in jobs]


def _parse_report(report: dict[str, Any] | None, jobs: Sequence[Job]) -> list[JobResult] | None:
    if report is None or type(report.get("results")) is not list or len(report["results"]) != len(jobs):
        return None
    return [_parse_job(raw, job) for raw, job in zip(report["results"], jobs, strict=True)]


def _parse_job(raw: Any, job: Job) -> JobResult:
    """A job's raw result; everything inside "message" came from the program's process."""
    if type(raw) is not dict or type(raw.get("status")) is not str:
        return JobResult("error", detail="malformed job result")
    if raw["status"] != "ok":
        return JobResult(raw["status"], detail=f"signal {raw['signal']}" if "signal" in raw else "")
    try:
        message = json.loads(str(raw["message"]))
        if type(message) is dict and type(message.get("broken")) is str:
            return JobResult("broken", detail=message["broken"][:100])
        outputs = message["outputs"]
        if type(outputs) is not list or len(outputs) != len(job.inputs):
            raise ValueError("wrong number of outputs")
        return JobResult("ok", tuple(_parse_call(o) for o in outputs))
    except (KeyError, TypeError, ValueError, RecursionError, _wire.WireError) as exc:
        return JobResult("error", detail=f"malformed job message: {type(exc).__name__}")


def _parse_call(out: Any) -> Call:
    if type(out) is not dict:
        raise ValueError("malformed call")
    if "raises" in out:
        return Call("raises", text=str(out["raises"])[:100])
    if "opaque" in out:
        return Call("opaque", text=str(out["opaque"])[:200])
    return Call("ok", value=_wire.decode(out["ok"]), text=str(out["repr"])[:200])
