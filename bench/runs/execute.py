"""The local executor: run cells in a process pool (or in-process), with rich progress bars.

Each worker is a fresh `spawn`ed process with `threads_per_worker` torch threads; it writes its
cell's record itself, atomically, so a finished cell survives whatever happens to the parent.
Progress (training steps, evaluation problems) streams back through a queue into `CellProgress`,
the display the Ray executor (sdbench.runs.ray_executor) shares. Cores the workers leave idle
(`idle_share`: a lone cell, `--workers 1`, more cores than workers) go to the cells, for their
evaluation lanes and teacher threads (sdbench.runs.lane; the same results either way).
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from sdbench.config import RunConfig
from sdbench.runs.cell import CellSpec, run_cell
from sdbench.runs.lane import spare_cores
from sdbench.runs.store import RunStore


def _run_and_store(cell: CellSpec, config: RunConfig, root: str, events: Any, idle: int = 0) -> dict[str, Any]:
    from pathlib import Path

    def report(phase: str, done: int, total: int) -> None:
        if events is not None:
            events.put((cell.key, phase, done, total))

    store = RunStore(Path(root))
    checkpoint = store.checkpoint_path(cell.key)
    board = store.root / "tensorboard" if config.report_to == "tensorboard" else None
    record, samples = run_cell(cell, config, report, checkpoint=checkpoint, tensorboard_dir=board, idle_cores=idle)
    store.write_record(cell.key, record, samples)
    checkpoint.unlink(missing_ok=True)   # the record supersedes it
    return {"key": cell.key, "status": record["status"], "failure": record.get("failure")}


def pending_cells(cells: list[CellSpec], store: RunStore, console: Console) -> list[CellSpec]:
    """The cells without a record (what a run still has to do), saying so when it resumes."""
    todo = [c for c in cells if not store.has_record(c.key)]
    if len(todo) < len(cells):
        console.print(f"resuming: {len(cells) - len(todo)} of {len(cells)} cells already finished")
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


def idle_share(workers: int, cells: int, threads: int) -> int:
    """Cores each worker's cell may use beyond its own threads (its evaluation lane, its teacher thread):
    the cores the busy workers leave idle, shared among them."""
    busy = max(1, min(workers, cells))
    return max(0, spare_cores(busy * threads)) // busy


def execute(config: RunConfig, cells: list[CellSpec], store: RunStore, console: Console) -> list[dict[str, Any]]:
    """Run every cell without a record; returns one outcome per cell run now."""
    todo = pending_cells(cells, store, console)
    with CellProgress(console, len(cells), len(cells) - len(todo)) as display:
        on_event, finish = display.on_event, display.finish
        workers = 1 if config.workers == 1 or len(todo) <= 1 else min(config.workers, len(todo))
        idle = idle_share(workers, len(todo), config.threads_per_worker)
        if workers == 1:
            for cell in todo:
                finish(_run_and_store(cell, config, str(store.root), _DirectEvents(on_event), idle))
            return display.outcomes

        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager:
            events = manager.Queue()
            stop = threading.Event()
            drain = threading.Thread(target=_drain, args=(events, on_event, stop), daemon=True)
            drain.start()
            try:
                pool = ProcessPoolExecutor(max_workers=min(config.workers, len(todo)), mp_context=ctx)
                try:
                    futures = [pool.submit(_run_and_store, c, config, str(store.root), events, idle) for c in todo]
                    for future in as_completed(futures):
                        finish(future.result())
                except BaseException:
                    # Abandon running cells: their records were never written, so a re-run redoes them.
                    for process in list(getattr(pool, "_processes", {}).values()):
                        process.terminate()
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
                pool.shutdown(wait=True)
            finally:
                stop.set()
                drain.join()
    return display.outcomes


class _DirectEvents:
    """The in-process stand-in for the progress queue."""

    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def put(self, event: tuple[str, str, int, int]) -> None:
        self.callback(*event)


def _drain(events: Any, callback: Any, stop: threading.Event) -> None:
    while True:
        try:
            callback(*events.get(timeout=0.1))
        except queue_mod.Empty:
            if stop.is_set():
                return
        except (EOFError, OSError):
            return
