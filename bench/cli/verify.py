"""`sdbench verify`: grade generations made elsewhere and print pass@k and diversity.

    sdbench verify --task gsm8k --samples gens.jsonl --data-path data/gsm8k --out graded.jsonl
    sdbench verify --task humaneval --samples gens.jsonl --json
    sdbench verify --task graph_paths --samples out/MODEL/samples_sdbench_graph_paths_<time>.jsonl

The samples file is sdbench's line format (`{"problem_id": ..., "completion": ...}` per line) or
lm-eval's sample log; what is read and how it is graded is `sdbench.eval.verify`. This command only
reads the file, grades it there and prints: a table of pass@k (k = 1, 2, 4, ... up to the smallest
per-problem sample count) and the diversity counts, or `--json`. `--out` writes one JSON line per
sample: problem_id, correct, status, functional_class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def verify_command(
    task: str = typer.Option(..., "--task", help="task name, e.g. gsm8k"),
    samples: Path = typer.Option(..., "--samples", help='JSONL: {"problem_id": ..., "completion": ...} per line, '
                                                        "or lm-eval's samples_<task>_<time>.jsonl"),
    out: Path | None = typer.Option(None, "--out", help="write one graded JSON line per sample here"),
    data_path: str | None = typer.Option(None, "--data-path", help="local data for real-data tasks"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Grade existing generations: pass@k (k up to the per-problem sample count) and diversity."""
    from sdbench.cli.paths import check_output_file, read_text_file
    from sdbench.eval.verify import grade, read_samples, summarize
    from sdbench.task import load_task

    if out is not None:
        check_output_file(out, "--out")      # before grading: a bad --out must not cost the grading
    text = read_text_file(samples, "samples file",
                          'pass a JSONL file to --samples: {"problem_id": ..., "completion": ...} per line, '
                          "or lm-eval's samples_<task>_<time>.jsonl", empty_ok=True)   # "holds no samples"
    rows_in = read_samples(text, samples, task)
    instance = load_task(task, data_path=data_path)
    results, graded = grade(instance, rows_in)
    summary = summarize(task, results)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r) + "\n" for r in graded))
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    _print_table(summary)


def _print_table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    spp = summary["samples_per_problem"]
    table = Table(title=f"{summary['task']}: {summary['problems']} problems, {summary['samples']} samples "
                        f"({spp['min']}..{spp['max']} per problem)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary["metrics"].items():
        table.add_row(key, f"{value:.4f}")
    Console().print(table)
