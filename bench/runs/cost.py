"""What a run will cost before it starts: worker-seconds per cell from measured per-step costs, and the
per-cell limits derived from them.

    seconds = cell_seconds(config, cell, model_bytes=870_064)
    limits = default_limits(config, cells)       # --cell-timeout / --cell-memory when not given

The constants are the default suite's measured stage times (README "What it costs", commit 0e85e4b, 27
quick cells on 2 cores, the testbeds' version 3 models): the training stages (sample, backward, student,
teacher, optimizer: 382 worker-s) over 18 trained cells x 150 steps x 16 prompts x 8 rollouts = 345 600
rollouts -> 1.1 ms a rollout; the evaluation stages (val, eval, verify: 257 worker-s) over about 480 000
evaluation samples -> 0.54 ms a sample. A model scales them by its weight bytes against the testbeds'
(0.8-4.2 MB, taken as 2 MB): a first-order guess (compute grows with parameters), not a measurement.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sdbench.config import RunConfig
from sdbench.runs.contain import Limits

ROLLOUT_S = 1.1e-3          # worker-seconds per training rollout (see above)
SAMPLE_S = 0.54e-3          # worker-seconds per evaluation sample
SETUP_S = 3.0               # a worker's imports and model load
REFERENCE_BYTES = 2_000_000  # the testbed models the constants were measured on
TIMEOUT_FACTOR = 10         # --cell-timeout default: 10x the costliest cell's estimate ...
MIN_TIMEOUT_S = 600.0       # ... but never under 10 minutes (a loaded machine is slower than the estimate)
MEMORY_SHARE = 0.8          # --cell-memory default: this share of the machine's RAM, split among the workers


def model_bytes(path: str) -> int:
    """Bytes of a local model directory's weight files (a catalogue name such as `smollm2-135m-instruct`: its
    prepared directory); the reference size for a hub id or an unprepared name (unknown here)."""
    from sdbench.errors import UserError
    from sdbench.models import resolve_model

    try:
        path = resolve_model(path)
    except UserError:
        return REFERENCE_BYTES
    root = Path(path)
    if not root.is_dir():
        return REFERENCE_BYTES
    return sum(f.stat().st_size for f in root.iterdir() if f.suffix in (".safetensors", ".bin", ".pt", ".gguf"))


def cell_seconds(config: RunConfig, cell: Any, model_size: int = REFERENCE_BYTES) -> float:
    """Estimated worker-seconds of one cell (`cell.strategy` a StrategySpec)."""
    training = config.training_for(cell.strategy)
    ev = config.evaluation
    trains = cell.strategy.name != "base" and training.steps > 0
    train = training.steps * training.prompts_per_step * training.rollouts_per_prompt * ROLLOUT_S if trains else 0
    val_points = (training.steps // ev.every + 1) if trains else 1
    samples = (val_points * ev.val_problems * ev.val_samples
               + (2 if trains else 1) * len(ev.splits) * ev.problems * ev.samples)
    return SETUP_S + (train + samples * SAMPLE_S) * max(1.0, model_size / REFERENCE_BYTES)


def run_seconds(config: RunConfig, cells: list[Any]) -> tuple[float, float]:
    """(worker-seconds of all `cells`, of the costliest one)."""
    from sdbench.task import load_task

    sizes: dict[str, int] = {}
    for task in {c.task for c in cells}:
        try:
            sizes[task] = model_bytes(config.model or load_task(task, data_path=config.data_path).base_model())
        except Exception:  # a task that cannot load here fails in its cell, with its reason
            sizes[task] = REFERENCE_BYTES
    costs = [cell_seconds(config, c, sizes[c.task]) for c in cells] or [0.0]
    return sum(costs), max(costs)


def machine_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def load_per_core() -> float:
    """The machine's 1-minute load average over its cores, at least 1: how many times slower than the
    estimate (measured on a quiet machine) a cell may run for want of CPU."""
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 1.0


def default_limits(config: RunConfig, cells: list[Any], timeout_s: float | None = None,
                   memory_bytes: int | None = None) -> Limits:
    """The per-cell limits: the given ones, else derived (and said how)."""
    said = []
    if timeout_s is None:
        _, worst = run_seconds(config, cells)
        # On a busy machine a healthy cell runs slower than the quiet-machine estimate: at load 13-16 on 2 cores,
        # quick mechanism cells ran past 10x theirs (706 s) and were stopped. So the bound scales with the load
        # per core seen at the start (a snapshot: pass --cell-timeout when the load will change a lot).
        load = load_per_core()
        timeout_s = max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * worst * load)
        said.append(f"timeout {TIMEOUT_FACTOR}x the costliest cell's estimate ({worst:.0f}s)"
                    + (f" x the load per core at the start ({load:.1f})" if load > 1.0 else "")
                    + f", at least {MIN_TIMEOUT_S:.0f}s")
    if memory_bytes is None:
        workers = max(1, min(config.workers, len(cells)))
        memory_bytes = int(MEMORY_SHARE * machine_memory() / workers)
        said.append(f"memory {MEMORY_SHARE:.0%} of the machine's RAM over {workers} worker(s)")
    return Limits(timeout_s=timeout_s, memory_bytes=memory_bytes, derived="; ".join(said))
