"""`run_suite(config)`: the whole flow of `sdbench run` — plan, execute, aggregate, report.

    from sdbench.config import resolve_config
    from sdbench.runs import run_suite
    summary = run_suite(resolve_config(overrides={"profile": "smoke"}))
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from sdbench.config import RunConfig
from sdbench.errors import DISK_ERRNOS, UserError, disk_full
from sdbench.runs.aggregate import summarize
from sdbench.runs.cell import build_strategy, plan_cells
from sdbench.runs.contain import CellPool, Limits, WorkerError
from sdbench.runs.cost import default_limits
from sdbench.runs.execute import execute
from sdbench.runs.provenance import collect as collect_provenance
from sdbench.runs.report import markdown, rich_tables
from sdbench.runs.reuse import read_reused, reuse_cells
from sdbench.runs.store import RunStore, atomic_write_bytes, atomic_write_json


def _check_inputs(config: RunConfig) -> list[dict[str, Any]]:
    """Fail before anything is written: unknown tasks, strategies, hyperparameters or models."""
    from sdbench.models import is_local
    from sdbench.task import check_split, load_task

    if config.report_to == "tensorboard":
        from sdbench.runs.tensorboard import require_tensorboard

        require_tensorboard()
    built = [build_strategy(spec) for spec in config.strategies]
    trains = [info["label"] for strategy, info in built if strategy.trains and config.training.steps > 0]
    for name in config.tasks:
        task = load_task(name, data_path=config.data_path)
        for split in config.evaluation.splits:
            check_split(task, split)
        if trains and "train" not in task.splits:
            raise UserError(f"task {name!r} has no train split, but {trains[0]!r} trains",
                            "evaluate it with non-training strategies only (e.g. --strategies base)")
        model = config.model or task.base_model()
        if is_local(model) and not (Path(model) / "config.json").is_file():
            raise UserError(f"model {model!r} (task {name!r}) is not a model directory (no config.json)",
                            "pass a transformers model directory or hub id to --model"
                            if config.model else f"run `sdbench pretrain {name}` or reinstall sdbench")
    return [info for _, info in built]


def _claim_run_dir(config: RunConfig, store: RunStore) -> None:
    path = store.root / "config.json"
    resolved = {"config": config.model_dump(mode="json"), "config_hash": config.config_hash()}
    if path.is_file():
        try:
            existing = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"{path} is corrupt", "delete the run directory or pass another --out") from exc
        if existing.get("config_hash") != resolved["config_hash"]:
            raise UserError(f"run directory {store.root} holds a run with a different config",
                            "pass another --out (or --name), or delete that directory")
        return
    atomic_write_json(path, resolved)


def _start_fresh(store: RunStore) -> None:
    """--force-new: remove a previous run in this directory (only if it is one). Called under the run
    lock: a run still using the directory makes this one stop before anything is deleted."""
    root = store.root
    if _foreign_entries(root):
        raise UserError(f"{root} exists and is not an sdbench run directory", "pass another --out")
    config = root / "config.json"
    # config.json goes last: a run killed half-way through this loop still reads as a run directory
    for entry in sorted(root.iterdir(), key=lambda p: p == config):
        if entry.name == ".lock":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _foreign_entries(root: Path) -> bool:
    """True when `root` holds something but is not an sdbench run directory: no config.json, and an entry
    other than the lock file or the temp file of a write (the `.config.json.tmp` a run claiming the directory
    this instant writes, or one a killed run left)."""
    if not root.is_dir() or (root / "config.json").is_file():
        return False
    return any(p.name != ".lock" and not (p.name.startswith(".") and p.name.endswith(".tmp"))
               for p in root.iterdir())


def run_suite(config: RunConfig, console: Console | None = None, *, force_new: bool = False,
              limits: Limits | None = None, retry_failed: bool = False, pool: CellPool | None = None,
              reuse: Sequence[Path] = ()) -> dict[str, Any]:
    """Run (or resume) every cell of `config`, then aggregate; SIGINT/SIGTERM stop it cleanly; a full disk
    is one error line (sdbench.errors.disk_full). `pool`: a `CellPool` the caller started before its own
    imports (the CLI does: the worker's start-up then costs no wall time); it is closed here either way.
    `reuse`: run directories of the same settings whose finished cells are taken, not recomputed
    (`sdbench.runs.reuse`)."""
    try:
        return _run_suite(config, console or Console(), force_new=force_new, limits=limits,
                          retry_failed=retry_failed, pool=pool, reuse=reuse)
    except OSError as exc:
        if exc.errno in DISK_ERRNOS:
            raise disk_full(exc.filename or config.run_dir, exc.strerror) from exc
        raise
    except WorkerError as exc:
        if exc.kind == "disk":
            raise disk_full(exc.detail["path"], exc.detail["message"]) from None
        raise RuntimeError(f"a cell worker failed outside its cell:\n{exc.detail['message']}") from None


def _run_suite(config: RunConfig, console: Console, *, force_new: bool, limits: Limits | None,
               retry_failed: bool, pool: CellPool | None, reuse: Sequence[Path]) -> dict[str, Any]:
    if config.executor != "local" and pool is not None:
        pool.close()
    pool = (pool or CellPool()).prestart() if config.executor == "local" else None
    try:
        return _run_in(config, console, force_new=force_new, limits=limits, retry_failed=retry_failed, pool=pool,
                       reuse=reuse)
    finally:
        if pool is not None:
            pool.close()


def _run_in(config: RunConfig, console: Console, *, force_new: bool, limits: Limits | None, retry_failed: bool,
            pool: CellPool | None, reuse: Sequence[Path] = ()) -> dict[str, Any]:
    strategies = _check_inputs(config)
    store = RunStore(config.run_dir)
    root = store.root
    # before the lock creates anything there (a directory with a .lock is one sdbench made: the lock decides)
    if force_new and not (root / ".lock").exists() and _foreign_entries(root):
        raise UserError(f"{root} exists and is not an sdbench run directory", "pass another --out")
    cells = plan_cells(config)
    with store.lock(), _terminate_as_interrupt():
        if force_new:
            _start_fresh(store)
        _claim_run_dir(config, store)
        dead = store.clear_dead_writes()
        if dead:
            console.print(f"removed {len(dead)} temp file(s) of an interrupted write (no other writer holds "
                          f"{root}): {', '.join(str(p.relative_to(root)) for p in dead[:3])}"
                          + (" ..." if len(dead) > 3 else ""))
        store.validate()
        if reuse:
            taken = reuse_cells(config, store, reuse, [c.key for c in cells])
            console.print(f"reused {taken} finished cell(s) from {len(reuse)} run(s) of the same settings")
        limits = limits or default_limits(config, cells)
        provenance = {**collect_provenance(config, strategies), "limits": limits.to_json()}
        if reused := read_reused(root):
            provenance["reused"] = reused
        atomic_write_json(root / "provenance.json", provenance)
        console.print(f"sdbench run: {len(cells)} cells ({len(config.strategies)} strategies x "
                      f"{len(config.tasks)} tasks x {config.seeds} seeds, profile {config.profile}) -> {root}")
        try:
            if config.executor == "ray":
                from sdbench.runs.ray_executor import execute_ray

                execute_ray(config, cells, store, console)
            else:
                execute(config, cells, store, console, limits=limits, retry_failed=retry_failed, pool=pool)
        except KeyboardInterrupt:
            done = sum(store.has_record(c.key) for c in cells)
            console.print(f"[yellow]interrupted[/yellow]: {done} of {len(cells)} cells are finished and saved; "
                          "run the same command again to resume")
            raise
        return _finish(config, cells, store, console)


def _finish(config: RunConfig, cells: list, store: RunStore, console: Console) -> dict[str, Any]:
    from sdbench.runs.report_html import write_report

    wanted = {c.key for c in cells}
    summary = summarize(r for r in store.records() if r.key in wanted)
    summary.config_hash = config.config_hash()
    # timing stays out of summary.json: wall times differ between runs, results must not
    atomic_write_json(store.root / "summary.json", summary.model_dump(mode="json", exclude_none=True,
                                                                      exclude={"timing"}))
    atomic_write_bytes(store.root / "summary.md", markdown(summary).encode())
    report = write_report(store.root, summary)
    for table in rich_tables(summary):
        console.print(table)
    console.print(stage_totals(summary.timing))
    console.print(f"results: {store.root / 'summary.json'}  table: {store.root / 'summary.md'}  report: {report}")
    return summary.model_dump(mode="json", exclude_none=True)


def stage_totals(timing: dict[str, float]) -> str:
    """One line: where the run's time went, summed over its cells (worker seconds, not wall)."""
    total = sum(timing.values())
    parts = [f"{stage.removesuffix('_s')} {seconds:.0f}s ({seconds / total:.0%})"
             for stage, seconds in timing.items() if seconds > 0] if total > 0 else []
    return "time per stage, summed over cells: " + (", ".join(parts) if parts else "-")


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a run like Ctrl-C: finished cells stay, the current ones are abandoned."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:      # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
