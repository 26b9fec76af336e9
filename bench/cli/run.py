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


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def run_command(
    config: Path | None = typer.Option(None, "--config", help="YAML or TOML file; keys mirror these options"),
    tasks: str | None = typer.Option(None, "--tasks", help="comma-separated task names"),
    strategies: str | None = typer.Option(None, "--strategies", help="comma-separated strategy names"),
    suite: str | None = typer.Option(None, "--suite", help="without --strategies: default (base, "
                                     "single_sampled_demo, grpo), all (every built-in strategy) or "
                                     "mechanism (default + demo_source=base_pool, teacher=frozen, grpo kl_coef=0.04)"),
    seeds: int | None = typer.Option(None, "--seeds", help="number of seeds (0..N-1)"),
    profile: str | None = typer.Option(None, "--profile", help="smoke | quick | full"),
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
) -> None:
    """Run the benchmark suite and write a run directory with records and a summary."""
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
    if print_config:
        print(json.dumps(resolved.model_dump(mode="json"), indent=2))
        return
    from sdbench.runs import run_suite

    summary = run_suite(resolved, force_new=force_new)
    if summary["failed"]:
        keys = ", ".join(f["key"] for f in summary["failed"])
        print(f"error: {len(summary['failed'])} cell(s) failed: {keys}", file=sys.stderr)
        raise typer.Exit(1)
