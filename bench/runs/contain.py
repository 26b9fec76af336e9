"""Contained cells: every cell runs in a worker process with a wall-time and a memory limit, and a worker
that dies takes only its own cell down.

    pool = CellPool(workers=2, limits=Limits(timeout_s=600, memory_bytes=8 * 2**30), on_event=..., note=...)
    for outcome in pool.run(jobs):      # jobs: (cell, config, run dir, idle cores)
        ...

Why not `ProcessPoolExecutor`: one worker killed from outside (the kernel's OOM killer) breaks the whole
pool (`BrokenProcessPool`), and it has no per-task time or memory bound. Here each worker is a `spawn`ed
process of its own with its own pipe (progress events and its outcome come back on it, so a worker killed
mid-message breaks nothing shared); the parent watches every busy worker: a cell past `timeout_s` or whose
worker (with its evaluation lane) holds more than `memory_bytes` resident is killed and recorded as failed
with that reason (kind "permanent": the same code would do it again); a worker that dies on its own is the
transient kind: its cell is tried once more within the run, then recorded as failed-transient (a resume
retries it). Workers die with the parent (PR_SET_PDEATHSIG): an orphan must never write beside the next
run, which holds the run lock. Workers are reused across cells (a cell's step-0 val cache lives in them).

Plugins registered in code (`@register_task` in a script, a test's fixture) travel to the workers by
reference (their modules must be importable there, as under `spawn` a script's `__main__` is), with
their classes' plain attributes (a model path set on the class at run time).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from sdbench.errors import DISK_ERRNOS

POLL_S = 0.2          # how often busy workers are checked against the limits


@dataclass(frozen=True)
class Limits:
    """Per-cell bounds; `derived` says how the defaults were reached (recorded in provenance.json)."""

    timeout_s: float
    memory_bytes: int
    derived: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"cell_timeout_s": round(self.timeout_s, 1), "cell_memory_bytes": self.memory_bytes,
                "derived": self.derived}


class WorkerError(Exception):
    """A worker failed outside its cell (e.g. writing the record): `kind` 'disk' or 'crash'."""

    def __init__(self, kind: str, detail: dict[str, Any]) -> None:
        super().__init__(detail.get("message", kind))
        self.kind, self.detail = kind, detail


# --- the worker side ----------------------------------------------------------------------------------

def _die_with_parent(parent: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG
    except (OSError, AttributeError):                                   # not Linux: best effort below
        pass
    if os.getppid() != parent:        # the parent died before the line above took effect
        os._exit(1)


def _register(registered: list[tuple[str, str, Any, str, str, dict[str, Any]]]) -> None:
    from sdbench.strategy import STRATEGIES
    from sdbench.task import TASKS

    tables = {"strategy": STRATEGIES, "task": TASKS}
    for kind, name, obj, distribution, version, state in registered:
        table = tables[kind]
        if name not in table:
            table.register(name, obj, distribution=distribution, version=version)
        for attr, value in state.items():      # e.g. a task's model path, set on the class at run time
            setattr(obj, attr, value)


def code_registered() -> list[tuple[str, str, Any, str, str, dict[str, Any]]]:
    """Strategies and tasks registered in this process's code (not entry points), picklable by reference,
    with their classes' plain attributes (str, number, bool: a path set on the class at run time)."""
    import pickle

    from sdbench.strategy import STRATEGIES
    from sdbench.task import TASKS

    out = []
    for kind, table in (("strategy", STRATEGIES), ("task", TASKS)):
        table.discover()
        for name, entry in list(table._entries.items()):
            if entry.entry_point is None and entry.obj is not None:
                try:
                    pickle.dumps(entry.obj)
                except Exception:  # defined where a worker cannot import it: that cell fails there, by name
                    continue
                state = {k: v for k, v in vars(entry.obj).items() if not k.startswith("_")
                         and isinstance(v, str | int | float | bool)} if isinstance(entry.obj, type) else {}
                out.append((kind, name, entry.obj, entry.distribution, entry.version, state))
    return out


def _worker(conn: Connection, parent: int, registered: list) -> None:
    """A worker's loop: run the cells it is sent, reporting progress and outcome on its pipe."""
    _die_with_parent(parent)
    os.setpgrp()                 # its own group: the parent kills it with its lane; Ctrl-C goes to the parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _register(registered)
    from sdbench.runs.cell import run_and_store

    class Events:
        def put(self, event: tuple) -> None:
            conn.send(("event", *event))

        def note(self, line: str) -> None:
            conn.send(("note", line))

    conn.send(("ready",))
    while (job := conn.recv()) is not None:
        cell, config, root, idle = job
        try:
            conn.send(("done", run_and_store(cell, config, root, Events(), idle)))
        except OSError as exc:
            if exc.errno not in DISK_ERRNOS:
                conn.send(("crash", {"message": traceback.format_exc()}))
                continue
            conn.send(("disk", {"errno": exc.errno, "path": exc.filename or root, "message": exc.strerror}))
        except Exception:
            conn.send(("crash", {"message": traceback.format_exc()}))


# --- the parent side ----------------------------------------------------------------------------------

def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (the evaluation lane), from /proc; 0 if gone."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except (OSError, ValueError):
        return total
    return total + sum(rss_bytes(c) for c in children)


class _Worker:
    def __init__(self, ctx: Any, registered: list) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, os.getpid(), registered), daemon=True,
                                   name="sdbench-cell-worker")
        self.process.start()
        child.close()
        self.job: tuple | None = None
        self.started = 0.0
        self.phase = "setup"
        self.killed_for: str | None = None    # why the parent killed it (a limit), None: died on its own

    def kill(self, reason: str | None = None) -> None:
        self.killed_for = self.killed_for or reason
        for target in (lambda: os.killpg(self.process.pid, signal.SIGKILL), self.process.kill):
            try:
                target()
            except (ProcessLookupError, PermissionError, OSError):
                pass


class CellPool:
    """Up to `workers` worker processes running cells under `limits`."""

    def __init__(self, workers: int = 1, limits: Limits | None = None, on_event: Callable[..., None] | None = None,
                 note: Callable[[str], None] | None = None) -> None:
        self.size, self.on_event, self.note = workers, on_event or (lambda *a: None), note or print
        self.limits = limits or Limits(timeout_s=float("inf"), memory_bytes=2**62)
        self.ctx = mp.get_context("spawn")
        self.registered = code_registered()
        self.workers: list[_Worker] = []

    def prestart(self) -> CellPool:
        """Start one worker now: its imports (about 1.7 CPU-s) overlap the parent's set-up of the run."""
        if not self.workers:
            self.workers.append(_Worker(self.ctx, self.registered))
        return self

    def run(self, jobs: list[tuple], failed_record: Callable[..., dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Yield one outcome per job as cells finish; `failed_record(cell, phase, kind, reason)` writes the
        record of a cell the pool had to stop and returns its outcome."""
        queue = deque(jobs)
        retried: set[str] = set()
        try:
            while queue or any(w.job for w in self.workers):
                while queue and (idle := self._idle()) is not None:
                    idle.job, idle.started, idle.phase, idle.killed_for = queue.popleft(), 0.0, "setup", None
                    idle.conn.send(idle.job)
                    idle.started = time.monotonic()
                busy = [w for w in self.workers if w.job]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=POLL_S)
                for worker in busy:
                    if worker.conn in ready or worker.process.sentinel in ready:
                        outcome = self._read(worker)
                        if outcome is not None:
                            worker.job = None
                            yield outcome
                    if worker.job and not worker.process.is_alive():
                        yield from self._lost(worker, queue, retried, failed_record)
                    elif worker.job:
                        self._check_limits(worker)
        finally:
            self.close()

    def _idle(self) -> _Worker | None:
        self.workers = [w for w in self.workers if w.process.is_alive() or w.job]
        for worker in self.workers:
            if worker.job is None:
                return worker
        if len(self.workers) < self.size:
            worker = _Worker(self.ctx, self.registered)
            self.workers.append(worker)
            return worker
        return None

    def _read(self, worker: _Worker) -> dict[str, Any] | None:
        """Drain the worker's pipe; its outcome when the cell is done."""
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                kind = message[0]
                if kind == "event":
                    worker.phase = message[2]
                    self.on_event(*message[1:])
                elif kind == "note":
                    self.note(message[1])
                elif kind == "done":
                    return message[1]
                elif kind in ("disk", "crash"):
                    raise WorkerError(kind, message[1])
        except (EOFError, OSError):
            pass            # died mid-cell: handled as lost by the caller
        return None

    def _check_limits(self, worker: _Worker) -> None:
        elapsed = time.monotonic() - worker.started
        if elapsed > self.limits.timeout_s:
            worker.kill(f"exceeded --cell-timeout {self.limits.timeout_s:.0f}s (stopped after {elapsed:.0f}s)")
            return
        rss = rss_bytes(worker.process.pid)
        if rss > self.limits.memory_bytes:
            worker.kill(f"exceeded --cell-memory {self.limits.memory_bytes / 2**30:.2f} GiB "
                        f"(resident {rss / 2**30:.2f} GiB)")

    def _lost(self, worker: _Worker, queue: deque, retried: set[str],
              failed_record: Callable[..., dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """A worker that is gone with its cell: stopped by a limit (permanent), or killed from outside
        (transient: tried once more now, then left to a resume)."""
        worker.process.join(timeout=5)
        job, worker.job = worker.job, None
        cell = job[0]
        if worker.killed_for is not None:
            yield failed_record(cell, worker.phase, "permanent", worker.killed_for)
            return
        code = worker.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if cell.key not in retried:
            retried.add(cell.key)
            self.note(f"cell {cell.key}: its worker died ({how}); running it again (once)")
            queue.appendleft(job)
            return
        yield failed_record(cell, worker.phase, "transient", f"its worker died ({how}), twice")

    def close(self) -> None:
        """Kill every worker: a busy one's cell is abandoned (no record: a resume redoes it), an idle one
        holds nothing (its records are written), one still starting up need not finish its imports."""
        for worker in self.workers:
            worker.kill()
        for worker in self.workers:
            worker.process.join(timeout=10)
            worker.conn.close()
        self.workers = []
