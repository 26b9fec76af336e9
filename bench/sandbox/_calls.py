"""Mode ``calls`` inside the sandbox: many small programs, each in its own forked process, one sandbox.

Run by `_child.py calls CONFIG` after confinement (stdlib only, ``python -I -S``); the harness side
is `calls.py`. The jobs file holds ``[{"program": source, "entry": name, "inputs": [args, ...]}]``
with every argument tuple wire-encoded (`_wire.py`). For each job this process, which never runs
program code, forks; the fork closes the report fd, points stdin/stdout/stderr at /dev/null, makes
itself a process group, runs the program, calls the entry on each input and writes one message
(the wire-encoded return values, or the exception type) to a pipe that only it and this process
hold. This process reads that pipe until end of stream or the job's deadline, kills the job's
group, and sends every job's raw message to the report fd, which no job process holds.

So a program can misreport only its own outputs, which is no more than returning other values;
whether they are right is decided outside the sandbox, on decoded plain data. A job that kills
this process, or hangs the whole run, loses the batch; `calls.py` then runs each job alone.
Not meant to be run directly.
"""

from __future__ import annotations

import builtins
import json
import os
import select
import signal
import time

import _wire  # type: ignore[import-not-found]  # sits beside this file inside the sandbox

MAX_JOB_OUTPUT = 4 << 20   # bytes one job may send back; more counts as a failed job
REPR_CHARS = 200           # each value's repr is kept to this many characters (behaviour classes)


def run_jobs(cfg: dict) -> dict:
    with open(cfg["jobs"], encoding="utf-8") as fh:
        jobs = json.load(fh)
    timeout = float(cfg["job_timeout"])
    report_fd = cfg["fds"]["report"]
    return {"results": [_run_one(job, timeout, report_fd) for job in jobs]}


def _run_one(job: dict, timeout: float, report_fd: int) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.close(report_fd)
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.setpgid(0, 0)
            _wire.send(write_end, _call(job))
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        os.setpgid(pid, pid)   # also here: no race with the kill below
    except OSError:
        pass
    body, status = _collect(read_end, time.monotonic() + timeout)
    try:
        os.killpg(pid, signal.SIGKILL)   # the job and anything it started that stayed in its group
    except OSError:
        pass
    _, wait_status = os.waitpid(pid, 0)
    if status == "ok" and body is None:
        status = "died"
    out: dict = {"status": status}
    if body is not None and status == "ok":
        out["message"] = body
    elif os.WIFSIGNALED(wait_status):
        out["signal"] = os.WTERMSIG(wait_status)
    return out


def _collect(fd: int, deadline: float) -> tuple[str | None, str]:
    """(the job's message as text, "ok") or (None, "timeout" | "too_large"); never trusts the bytes."""
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None, "timeout"
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_JOB_OUTPUT:
                return None, "too_large"
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) < 4 or int.from_bytes(data[:4], "big") != len(data) - 4:
        return None, "ok"   # nothing (or a torn message): the job died before it finished
    return data[4:].decode("utf-8", errors="replace"), "ok"


def _call(job: dict) -> dict:
    """In the job's own process: run the program, call its entry on every input."""
    namespace: dict = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(compile(job["program"], "prog.py", "exec", dont_inherit=True), namespace)
        fn = namespace[job["entry"]]
    except BaseException as exc:  # noqa: BLE001 - the program is broken, whatever it raised
        return {"broken": type(exc).__name__}
    outputs = []
    for args in job["inputs"]:
        try:
            value = fn(*_wire.decode(args))
            text = repr(value)[:REPR_CHARS]
        except BaseException as exc:  # noqa: BLE001 - SystemExit from f is a failed call too
            outputs.append({"raises": type(exc).__name__})
            continue
        try:
            outputs.append({"ok": _wire.encode(value), "repr": text})
        except BaseException:  # noqa: BLE001 - not plain data: it can equal no expected value
            outputs.append({"opaque": text})
    return {"outputs": outputs}
