"""`sdbench eval`: evaluate one model on tasks, with sdbench's own sampler or through lm-eval.

    sdbench eval --model MODEL_DIR --tasks graph_paths                     # sdbench harness
    sdbench eval --model MODEL_DIR --tasks graph_paths --harness lm-eval   # export + lm-eval's hf model

Both print pass@k (k = 1, 2, ... n), distinct correct solutions and semantic classes per task. The
lm-eval harness also regrades lm-eval's logged samples with sdbench.eval and says whether the two
agree (they must: same verifier, same estimator). --out writes the numbers as JSON.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import typer


def _native(model: str, tasks: list[str], *, samples: int, problems: int, split: str, seed: int,
            data_path: str | None) -> dict[str, dict[str, Any]]:
    from sdbench.core.model import load_model
    from sdbench.eval.evaluate import evaluate_split
    from sdbench.eval.metrics import problem_metrics
    from sdbench.lmeval_bridge import metric_names
    from sdbench.task import check_split, load_task

    lm, tokenizer = load_model(model)
    report = {}
    for name in tasks:
        task = load_task(name, data_path=data_path)
        check_split(task, split)
        out = evaluate_split(lm, tokenizer, task, task.problems(split, problems, seed=0), n=samples, seed=seed)
        metrics = problem_metrics(out.problems)
        report[name] = {"problems": len(out.problems),
                        "sdbench": {m: float(metrics[m].mean()) for m in [*metric_names(samples), "entropy"]}}
    return report


def eval_command(
    model: str = typer.Option(..., "--model", help="local model directory or hub id"),
    tasks: str = typer.Option(..., "--tasks", help="comma-separated sdbench task names"),
    harness: str = typer.Option("sdbench", "--harness", help="sdbench | lm-eval"),
    samples: int = typer.Option(16, "--samples", help="completions per problem (a power of 2)"),
    problems: int = typer.Option(20, "--problems", min=1, help="problems per task"),
    split: str = typer.Option("test", "--split", help="task split"),
    seed: int = typer.Option(0, "--seed", help="sampling seed"),
    device: str = typer.Option("cpu", "--device", help="lm-eval device (cpu, cuda, ...)"),
    data_path: str | None = typer.Option(None, "--data-path", help="local data for real-data tasks"),
    export_dir: Path | None = typer.Option(None, "--export-dir", help="keep the lm-eval task files here"),
    out: Path | None = typer.Option(None, "--out", help="write the results as JSON"),
) -> None:
    """Evaluate a model on sdbench tasks: pass@k and diversity, natively or through lm-eval."""
    from rich.console import Console
    from rich.table import Table

    from sdbench.cli.paths import check_output_dir, check_output_file
    from sdbench.errors import UserError
    from sdbench.lmeval_bridge import run_lm_eval

    if out is not None:          # bad output paths fail before the model is loaded, not after the evaluation
        check_output_file(out, "--out")
    if export_dir is not None:
        check_output_dir(export_dir, "--export-dir")
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if samples < 1 or samples & (samples - 1):
        raise UserError(f"--samples {samples} is not a power of two", "pass 8, 16, 32, ... (pass@k up to k = n)")
    if harness == "sdbench":
        report = _native(model, names, samples=samples, problems=problems, split=split, seed=seed,
                         data_path=data_path)
    elif harness == "lm-eval":
        with tempfile.TemporaryDirectory(prefix="sdbench-lmeval-") as tmp:
            report = run_lm_eval(model, names, export_dir or Path(tmp), samples=samples, problems=problems,
                                 split=split, seed=seed, device=device, data_path=data_path)
    else:
        raise UserError(f"unknown harness {harness!r}", "use sdbench or lm-eval")

    console = Console()
    for name, entry in report.items():
        table = Table(title=f"{name} ({split}, {entry['problems']} problems, n={samples}, harness {harness})")
        columns = ["lm_eval", "sdbench"] if "lm_eval" in entry else ["sdbench"]
        table.add_column("metric")
        for col in columns:
            table.add_column("lm-eval" if col == "lm_eval" else "sdbench regrade" if len(columns) > 1 else "sdbench")
        for metric in entry["sdbench"]:
            table.add_row(metric, *(f"{entry[c][metric]:.4f}" if metric in entry[c] else "" for c in columns))
        console.print(table)
        if "lm_eval" in entry:
            agree = all(abs(entry["lm_eval"][m] - entry["sdbench"][m]) < 1e-9 for m in entry["lm_eval"])
            entry["agree"] = agree
            console.print("lm-eval's numbers equal sdbench's regrade of its samples" if agree else
                          "[red]lm-eval's numbers differ from sdbench's regrade of its samples[/red]")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"model": model, "harness": harness, "split": split, "samples": samples,
                                   "tasks": report}, indent=1, sort_keys=True) + "\n")
    if any(entry.get("agree") is False for entry in report.values()):
        raise typer.Exit(1)
