"""The Ray executor: one Ray task per cell, with its resource request, and the same progress bars.

    sdbench run --executor ray                           # start a local Ray instance for this run
    sdbench run --executor ray --ray-address auto        # or join a running cluster (ray start --head)

Each cell is a Ray task asking for one GPU when the cluster has GPUs, and `threads_per_worker`
CPUs either way. The task runs the local executor's `run_and_store`, so it writes its own record
through the atomic RunStore exactly like a local worker: a finished cell survives whatever happens
to the driver, and re-running the command resumes. Progress events go to a small Ray actor that the
driver drains into the shared `CellProgress` display.

Plugins in the driver's main script: a Ray worker re-runs the driver's `__main__` file (as
`__mp_main__`, skipping its `if __name__ == "__main__"` block) before its first cell, the way
multiprocessing's spawn workers do, so tasks and strategies registered there exist in the worker
too. On a remote cluster, install plugins as packages (entry points) on every node; paths in the
config (run directory, --model, --data-path) must be valid there (a shared filesystem).

Ray is the `ray` extra (`pip install 'sdbench[ray]'`); without it this executor is a one-line error.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from rich.console import Console

from sdbench.config import RunConfig
from sdbench.errors import UserError
from sdbench.runs.cell import CellSpec, run_and_store
from sdbench.runs.execute import CellProgress, pending_cells
from sdbench.runs.store import RunStore

POLL_S = 0.2          # how often the driver drains progress events while cells run


def import_ray() -> Any:
    """The `ray` module, or a one-line UserError with the install hint."""
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray, which is not installed",
                        "pip install 'sdbench[ray]' (or use --executor local)") from None
    return ray


class _EventSink:
    """Actor: buffers (key, phase, done, total) progress events until the driver drains them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int, int]] = []

    def put(self, event: tuple[str, str, int, int]) -> None:
        self.events.append(event)

    def drain(self) -> list[tuple[str, str, int, int]]:
        out, self.events = self.events, []
        return out


class _ActorEvents:
    """The worker-side stand-in for the local executor's queue: `put` is a fire-and-forget call."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def put(self, event: tuple[str, str, int, int]) -> None:
        self.sink.put.remote(event)


_prepared: set[tuple[str | None, str]] = set()   # per worker process: (main file, cwd) already set up


def _prepare_worker(main_file: str | None, cwd: str) -> None:
    """Give a Ray worker the driver's working directory and its main script's registrations."""
    if Path(cwd).is_dir():
        os.chdir(cwd)            # relative paths in the config mean what they mean to the driver
    if (main_file, cwd) in _prepared:
        return
    _prepared.add((main_file, cwd))
    if main_file and Path(main_file).is_file():
        import runpy
        import types

        # As multiprocessing's spawn does: run the main file under another name, so its
        # `if __name__ == "__main__"` block stays off and its module-level registrations happen.
        module = types.ModuleType("__mp_main__")
        sys.modules["__mp_main__"] = module
        module.__dict__.update(runpy.run_path(main_file, run_name="__mp_main__"))


def _ray_cell(cell: CellSpec, config: RunConfig, root: str, sink: Any, main_file: str | None,
              cwd: str) -> dict[str, Any]:
    """The body of one Ray task: one cell, its record written by this worker."""
    _prepare_worker(main_file, cwd)
    return run_and_store(cell, config, root, _ActorEvents(sink))


def driver_main_file() -> str | None:
    """The driver's main script, when it is a Python file a worker could re-run."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return str(Path(path).resolve()) if path and str(path).endswith(".py") else None


def _connect(ray: Any, config: RunConfig) -> bool:
    """Join or start Ray; True when this call started it (and so must shut it down)."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                               "log_to_driver": False}
    if config.ray_address:
        options["address"] = config.ray_address
    else:
        # A local instance sized like the local executor's pool: `workers` cells at a time.
        options["num_cpus"] = config.workers * config.threads_per_worker
    # ray.init installs its own SIGTERM handler (sys.exit); keep the runner's, which stops a run
    # like Ctrl-C with the resume hint.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = config.ray_address or "a local instance"
        raise UserError(f"cannot start Ray ({where}): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                        "check --ray-address (`ray status` on the head node), or omit it") from exc
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return True


def cell_resources(ray: Any, config: RunConfig) -> dict[str, float]:
    """One GPU per cell when the cluster has GPUs, and threads_per_worker CPUs either way."""
    resources: dict[str, float] = {"num_cpus": float(config.threads_per_worker)}
    if ray.cluster_resources().get("GPU", 0) >= 1:
        resources["num_gpus"] = 1.0
    return resources


def execute_ray(config: RunConfig, cells: list[CellSpec], store: RunStore, console: Console) -> list[dict[str, Any]]:
    """Run every cell without a record as a Ray task; returns one outcome per cell run now."""
    ray = import_ray()
    todo = pending_cells(cells, store, console)
    if not todo:
        return []
    started = _connect(ray, config)
    try:
        resources = cell_resources(ray, config)
        sink = ray.remote(num_cpus=0)(_EventSink).remote()
        # max_retries=0: a crashed worker is an error of the run, as in the local process pool.
        task = ray.remote(_ray_cell).options(max_retries=0, **resources)
        root, main_file, cwd = str(store.root.resolve()), driver_main_file(), os.getcwd()
        with CellProgress(console, len(cells), len(cells) - len(todo)) as display:
            pending = {task.remote(cell, config, root, sink, main_file, cwd): cell for cell in todo}
            try:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                    for event in ray.get(sink.drain.remote()):
                        display.on_event(*event)
                    for ref in ready:
                        pending.pop(ref)
                        display.finish(ray.get(ref))
            except BaseException:
                # Abandon running cells: their records were never written, so a re-run redoes them.
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise
        return display.outcomes
    finally:
        if started:
            ray.shutdown()
