"""The local executor: run cells in worker processes (sdbench.runs.contain), with rich progress bars.

Each worker is a `spawn`ed process with `threads_per_worker` torch threads, even with `--workers 1`: a
cell that hangs, grows without bound or is killed takes only itself down (its limits: `--cell-timeout`,
`--cell-memory`). The worker writes its cell's record itself, atomically, so a finished cell survives
whatever happens to the parent. Progress (training steps, evaluation problems) streams back on the
worker's pipe into `CellProgress`,
the display the Ray executor (sdbench.runs.ray_executor) shares. Cores the workers leave idle
(`idle_share`: a lone cell, `--workers 1`, more cores than workers) go to the cells, for their
evaluation lanes and teacher threads (sdbench.eval.lane; the same results either way).
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from sdbench.config import RunConfig
from sdbench.runs.cell import CellSpec, failure_kind
from sdbench.runs.contain import CellPool, Limits
from sdbench.runs.store import RunStore


def pending_cells(cells: list[CellSpec], store: RunStore, console: Console, *,
                  retry_failed: bool = False) -> list[CellSpec]:
    """What a run still has to do, saying so when it resumes: cells without a record, cells that failed
    for a transient reason (a full disk, a dead worker, a checkpoint that failed its check), and with
    `retry_failed` every failed cell."""
    todo, retry = [], 0
    for cell in cells:
        if not store.has_record(cell.key):
            todo.append(cell)
            continue
        record = store.read_record(cell.key)
        if record.status != "ok" and (retry_failed or failure_kind(record.failure) == "transient"):
            todo.append(cell)
            retry += 1
    if len(todo) < len(cells) or retry:
        again = f"; retrying {retry} failed cell(s)" if retry else ""
        console.print(f"resuming: {len(cells) - len(todo)} of {len(cells)} cells already finished{again}")
    return todo


class CellProgress:
    """The rich progress display every executor shares: an overall bar plus one bar per running cell.

    Feed it progress events with `on_event(key, phase, done, total)` and finished cells with
    `finish(outcome)`; the outcomes collect in `outcomes`.
    """

    def __init__(self, console: Console, total: int, already_done: int) -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.console = console
        self.progress = Progress(*columns, console=console, transient=False, disable=already_done >= total)
        self.overall = self.progress.add_task("cells", total=total, completed=already_done)
        self.bars: dict[str, TaskID] = {}
        self.finished: set[str] = set()
        self.outcomes: list[dict[str, Any]] = []

    def __enter__(self) -> CellProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, key: str, phase: str, done: int, total: int) -> None:
        if key in self.finished:     # a late event from a cell already done (remote executors)
            return
        label = f"  {key} [{phase}]"
        if key not in self.bars:
            self.bars[key] = self.progress.add_task(label, total=total)
        self.progress.update(self.bars[key], description=label, completed=done, total=total)

    def finish(self, outcome: dict[str, Any]) -> None:
        self.outcomes.append(outcome)
        self.finished.add(outcome["key"])
        if outcome["key"] in self.bars:
            self.progress.remove_task(self.bars.pop(outcome["key"]))
        self.progress.advance(self.overall)
        if outcome["status"] != "ok":
            self.console.print(f"[red]cell {outcome['key']} failed[/red]: {outcome['failure'].get('reason')}")


def spare_cores(busy: int) -> int:
    """Cores of this process's affinity mask beyond `busy`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:        # not on Linux
        cores = os.cpu_count() or 1
    return cores - busy


def idle_share(workers: int, cells: int, threads: int) -> int:
    """Cores each worker's cell may use beyond its own threads (its evaluation lane, its teacher thread):
    the cores the busy workers leave idle, shared among them."""
    busy = max(1, min(workers, cells))
    return max(0, spare_cores(busy * threads)) // busy


def execute(config: RunConfig, cells: list[CellSpec], store: RunStore, console: Console,
            limits: Limits | None = None, retry_failed: bool = False, pool: CellPool | None = None,
            ) -> list[dict[str, Any]]:
    """Run every cell still to do, each in a worker process under `limits` (sdbench.runs.contain);
    returns one outcome per cell run now."""
    from sdbench.runs.cost import default_limits

    todo = pending_cells(cells, store, console, retry_failed=retry_failed)
    limits = limits or default_limits(config, cells)
    with CellProgress(console, len(cells), len(cells) - len(todo)) as display:
        workers = 1 if config.workers == 1 or len(todo) <= 1 else min(config.workers, len(todo))
        idle = idle_share(workers, len(todo), config.threads_per_worker)
        pool = pool or CellPool()     # (the runner's, started early: its imports overlap the run's set-up)
        pool.size, pool.limits, pool.on_event, pool.note = workers, limits, display.on_event, console.print
        jobs = [(cell, config, str(store.root), idle) for cell in todo]
        for outcome in pool.run(jobs, lambda *a: store_failure(store, config, *a)):
            display.finish(outcome)
    return display.outcomes


def store_failure(store: RunStore, config: RunConfig, cell: CellSpec, phase: str, kind: str,
                  reason: str) -> dict[str, Any]:
    """The record of a cell its worker could not finish (a limit, a dead worker); its checkpoint stays."""
    failure = {"phase": phase, "kind": kind, "reason": reason}
    store.write_record(cell.key, {"key": cell.key, "task": cell.task, "seed": cell.seed, "status": "failed",
                                  "strategy": {"name": cell.strategy.name, "label": cell.strategy.label},
                                  "config_hash": config.config_hash(), "failure": failure}, [])
    return {"key": cell.key, "status": "failed", "failure": failure}
