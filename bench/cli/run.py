"""`sdbench run`: plan cells (strategy x task x seed), run them, aggregate over seeds, print the table.

    sdbench run                                  # the default suite, quick profile
    sdbench run --profile smoke --seeds 1        # a minute-long check
    sdbench run --config suite.yaml --print-config
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

MAX_WORKER_HOURS = 100   # a run estimated above this asks first (--yes)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def run_command(
    config: Path | None = typer.Option(None, "--config", help="YAML or TOML file; keys mirror these options"),
    tasks: str | None = typer.Option(None, "--tasks", help="comma-separated task names"),
    strategies: str | None = typer.Option(None, "--strategies", help="comma-separated strategy names"),
    suite: str | None = typer.Option(None, "--suite", help="without --strategies: default (base, "
                                     "single_sampled_demo, grpo), all (every built-in strategy), mechanism "
                                     "(default + demo_source=base_pool, teacher=frozen, grpo kl_coef=0.04) or "
                                     "leaderboard (all + teacher=live, teacher=frozen, demo_source=base_pool, "
                                     "grpo kl_coef=0.04)"),
    seeds: int | None = typer.Option(None, "--seeds", help="number of seeds (0..N-1)"),
    profile: str | None = typer.Option(None, "--profile", help="smoke | quick | full | real-quick"),
    out: str | None = typer.Option(None, "--out", help="run directory (default runs/<name>)"),
    name: str | None = typer.Option(None, "--name", help="run name"),
    workers: int | None = typer.Option(None, "--workers", help="parallel worker processes"),
    executor: str | None = typer.Option(None, "--executor", help="local | ray"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster address"),
    model: str | None = typer.Option(None, "--model", help="hub id or local model dir (default: each task's)"),
    data_path: str | None = typer.Option(None, "--data-path", help="local data for real-data tasks"),
    loss_impl: str | None = typer.Option(None, "--loss-impl", help="fused | materialized"),
    backend: str | None = typer.Option(None, "--backend", help="sampler: hf | vllm (GPU, extra `gpu`)"),
    report_to: str | None = typer.Option(None, "--report-to", help="none | tensorboard (per-step logs in the run dir)"),
    print_config: bool = typer.Option(False, "--print-config", help="print the resolved config and exit"),
    force_new: bool = typer.Option(False, "--force-new", help="discard a previous run in the run directory"),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="recompute failed cells (transient "
                                      "failures are retried on every resume anyway)"),
    cell_timeout: float | None = typer.Option(None, "--cell-timeout", help="seconds a cell may run before it is "
                                              "stopped (default: 10x the costliest cell's estimate, >= 600)"),
    cell_memory: str | None = typer.Option(None, "--cell-memory", help="resident memory a cell may hold, e.g. 4G "
                                           "or 512M (default: 80% of RAM over the workers)"),
    reuse: list[Path] | None = typer.Option(None, "--reuse", help="an earlier run directory of the same settings "
                                            "(other tasks, arms or seeds allowed) whose finished cells are taken, "
                                            "not recomputed; repeatable"),
    yes: bool = typer.Option(False, "--yes", help=f"run even when the estimate exceeds {MAX_WORKER_HOURS} "
                             "worker-hours"),
) -> None:
    """Run the benchmark suite and write a run directory with records and a summary."""
    pool = None
    if not print_config:
        from sdbench.runs.contain import CellPool

        # The first cell worker starts now: its imports (torch and the core, ~1.7 CPU-s) run on the idle core
        # while this process does its own and resolves the config, not after them (issue 31: a contained
        # cell must cost no wall time). run_suite closes it; so does the `finally` if the command stops first.
        pool = CellPool().prestart()
    try:
        from sdbench.config import read_config_file, resolve_config
        from sdbench.strategy import builtin_strategies

        file_data = read_config_file(config) if config else {}
        overrides = {"tasks": _split(tasks), "strategies": _split(strategies), "seeds": seeds, "profile": profile,
                     "out": out, "name": name, "workers": workers, "executor": executor, "ray_address": ray_address,
                     "model": model, "data_path": data_path, "report_to": report_to,
                     "suite": suite}
        training = dict(file_data.get("training") or {})
        for key, value in (("loss_impl", loss_impl), ("backend", backend)):
            if value is not None:
                training[key] = value
                overrides["training"] = training
        resolved = resolve_config(file_data, overrides, all_strategies=builtin_strategies)
        if resolved.out is not None:     # a file where the run directory goes: one line now, not a traceback later
            from sdbench.cli.paths import check_output_dir

            check_output_dir(Path(resolved.out), "--out")
        if resolved.training.backend == "vllm" and not print_config:
            from sdbench.core.vllm_sampler import require_vllm

            require_vllm()      # one clear line before anything is written, not a failed record per cell
        if resolved.model is not None and not print_config:
            from sdbench.models import resolve_model

            resolve_model(resolved.model)   # a named model not yet prepared: one line, before anything is written
        if print_config:
            print(json.dumps(resolved.model_dump(mode="json"), indent=2))
            return
        from sdbench.runs import run_suite

        if not yes:
            _confirm_cost(resolved)
        limits = None
        if cell_timeout is not None or cell_memory is not None:
            from sdbench.runs.cell import plan_cells
            from sdbench.runs.cost import default_limits

            limits = default_limits(resolved, plan_cells(resolved), timeout_s=_positive(cell_timeout, "--cell-timeout"),
                                    memory_bytes=parse_bytes(cell_memory) if cell_memory is not None else None)
        summary = run_suite(resolved, force_new=force_new, limits=limits, retry_failed=retry_failed, pool=pool,
                            reuse=reuse or ())
        if summary["failed"]:
            keys = ", ".join(f["key"] for f in summary["failed"])
            print(f"error: {len(summary['failed'])} cell(s) failed: {keys}", file=sys.stderr)
            if any(f.get("kind") == "transient" for f in summary["failed"]):
                print("hint: the transient ones are retried when you run the same command again", file=sys.stderr)
            raise typer.Exit(1)
    finally:
        if pool is not None:
            pool.close()


def _confirm_cost(config) -> None:
    """A run estimated over MAX_WORKER_HOURS (sdbench.runs.cost) prints its estimate and asks; without a
    terminal to ask on it is refused (pass --yes)."""
    from sdbench.errors import UserError
    from sdbench.runs.cell import plan_cells
    from sdbench.runs.cost import run_seconds

    cells = plan_cells(config)
    total, _ = run_seconds(config, cells)
    hours = total / 3600
    if hours <= MAX_WORKER_HOURS:
        return
    estimate = (f"this run is estimated at {hours:,.0f} worker-hours ({len(cells)} cells, from the measured "
                f"per-step costs), over the {MAX_WORKER_HOURS} worker-hour threshold")
    if sys.stdin.isatty() and typer.confirm(estimate + "; run it?", default=False, err=True):
        return
    raise UserError(estimate, "pass --yes to run it anyway, or lower seeds, steps, problems or samples")


def _positive(value: float | None, option: str) -> float | None:
    from sdbench.errors import UserError

    if value is not None and not value > 0:
        raise UserError(f"invalid value for {option!r}: {value} (must be > 0)", "pass seconds, e.g. 3600")
    return value


def parse_bytes(text: str) -> int:
    """'4G', '512M', '1.5GiB', '100000000' -> bytes (powers of 1024)."""
    from sdbench.errors import UserError

    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in units and raw[-1:] else ""
    try:
        value = float(raw[:-1] if unit else raw) * units[unit]
    except ValueError:
        value = -1
    if not value > 0:
        raise UserError(f"invalid value for '--cell-memory': {text!r}", "pass a size such as 4G or 512M")
    return int(value)
