"""`sdbench tasks list|sample`: the registered tasks, and problems for inspection.

    sdbench tasks list
    sdbench tasks sample graph_paths --split test --n 3 --json
"""

from __future__ import annotations

import json

import typer

app = typer.Typer(no_args_is_help=True, help="Registered tasks.")


@app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """List every registered task with its splits and default base model."""
    from rich.console import Console
    from rich.table import Table

    from sdbench.registry import describe
    from sdbench.task import TASKS

    rows = []
    for entry in TASKS.entries():
        cls = entry.obj
        rows.append({**entry.provenance, "ok": entry.error is None,
                     "summary": describe(cls) if cls is not None else f"failed to import: {entry.error}",
                     "splits": list(getattr(cls, "splits", ()))})
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title="sdbench tasks")
    for col in ("name", "distribution", "splits", "summary"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["name"], row["distribution"], ",".join(row["splits"]), row["summary"],
                      style=None if row["ok"] else "red")
    Console().print(table)


@app.command("sample")
def sample_command(task: str = typer.Argument(..., help="task name"),
                   split: str = typer.Option("test", "--split"),
                   n: int = typer.Option(3, "--n", min=1, help="number of problems"),
                   seed: int = typer.Option(0, "--seed"),
                   data_path: str | None = typer.Option(None, "--data-path", help="local data for real-data tasks"),
                   as_json: bool = typer.Option(False, "--json", help="one JSON object per line")) -> None:
    """Print problems of a split: ids, prompts and reference solutions."""
    from sdbench.errors import UserError
    from sdbench.task import check_split, load_task

    try:
        instance = load_task(task, data_path=data_path) if data_path else load_task(task)
    except TypeError as exc:
        raise UserError(f"task {task!r} does not read data files", "drop --data-path") from exc
    check_split(instance, split)
    for problem in instance.problems(split, n, seed=seed):
        if as_json:
            print(json.dumps({"problem_id": problem.id, "prompt": problem.prompt, "reference": problem.reference}))
        else:
            print(f"[{problem.id}]\n  prompt:    {problem.prompt}\n  reference: {problem.reference}")
