"""`sdbench tasks list|sample|check`: the registered tasks, problems for inspection, and the testbed gate.

    sdbench tasks list
    sdbench tasks sample graph_paths --split test --n 3 --json
    sdbench tasks check graph_paths [--model PATH] [--json] [--problems N] [--samples N] [--write]

`tasks list --json` carries each task's committed gate numbers (`gate`, from tasks/assets/gate/gate.json,
written by `tasks check NAME --write`; `stale` when the shipped weights changed since): the full gate
takes minutes per task, too slow to run for a listing.
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
        from sdbench.gate_store import read_gate

        for row, entry in zip(rows, TASKS.entries(), strict=True):
            row["gate"] = _committed_gate(read_gate, entry.name, entry.obj)
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
    from sdbench.task import check_split, load_task

    instance = load_task(task, data_path=data_path)
    check_split(instance, split)
    for problem in instance.problems(split, n, seed=seed):
        if as_json:
            print(json.dumps({"problem_id": problem.id, "prompt": problem.prompt, "reference": problem.reference}))
        else:
            print(f"[{problem.id}]\n  prompt:    {problem.prompt}\n  reference: {problem.reference}")


def _committed_gate(read_gate, name: str, cls) -> dict | None:
    """The committed gate entry, or None (no entry, or a task whose base model cannot be named offline)."""
    try:
        return read_gate(name, cls().base_model()) if cls is not None else None
    except Exception:   # a real-data task may need --data-path to instantiate: it has no committed gate
        return None


@app.command("check")
def check_command(task: str = typer.Argument(..., help="task name"),
                  model: str | None = typer.Option(None, "--model", help="model directory (default: the base model)"),
                  as_json: bool = typer.Option(False, "--json", help="one JSON object"),
                  problems: int = typer.Option(128, "--problems", min=1, help="train problems"),
                  samples: int = typer.Option(32, "--samples", min=2, help="student samples per problem (n of pass@n)"),
                  teacher_samples: int = typer.Option(8, "--teacher-samples", min=1,
                                                      help="teacher-as-policy samples per problem"),
                  seed: int = typer.Option(0, "--seed"),
                  threads: int = typer.Option(1, "--threads", min=1, help="torch intra-op threads"),
                  write: bool = typer.Option(False, "--write",
                                             help="record the numbers in tasks/assets/gate/gate.json")) -> None:
    """The testbed gate: is the demo-conditioned teacher right for the right reason? Exit 1 when a check fails."""
    from sdbench.core.model import set_threads
    from sdbench.errors import UserError
    from sdbench.gate import GateBudget, run_gate
    from sdbench.gate_store import write_gate
    from sdbench.task import load_task

    if write and model is not None:
        raise UserError("--write records the shipped base model's numbers", "drop --model (or --write)")
    load_task(task)                     # an unknown name fails before any model is loaded
    set_threads(threads)
    report = run_gate(task, model, GateBudget(problems=problems, samples=samples, teacher_samples=teacher_samples,
                                              seed=seed))
    if write:
        write_gate(report)
    if as_json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        _print_gate(report)
    if not report.passed:
        raise typer.Exit(1)


def _print_gate(report) -> None:
    from rich.console import Console
    from rich.table import Table

    budget, counts = report.details["budget"], report.details["counts"]
    table = Table(title=f"gate: {report.task} on {report.model}",
                  caption=f"{budget['problems']} train problems x {budget['samples']} samples, "
                          f"{budget['teacher_samples']} teacher samples per problem with a demo "
                          f"({counts['problems_with_demo']}), seed {budget['seed']}, {report.details['wall_s']} s")
    for col in ("check", "value", "threshold", "result"):
        table.add_column(col)
    for check in report.checks:
        result = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "n/a"}[check.passed]
        value = "null" if check.value is None else f"{check.value:.3f}"
        table.add_row(check.name, value, check.threshold, result)
    table.add_row("headroom", "-", "GRPO quick test pass@1 <= 0.90: not measured by this command", "n/a")
    console = Console()
    console.print(table)
    m = report.metrics
    console.print("also: " + ", ".join(f"{k} {'null' if m[k] is None else f'{m[k]:.3f}'}"
                                       for k in ("teacher_pass1", "student_loglik_auc", "delta_incorrect_mean")))
    tilt = report.details.get("teacher_tilt")
    if tilt:
        fmt = lambda v: "null" if v is None else f"{v:.3f}"   # noqa: E731
        console.print(f"teacher tilt (information, issue 29): mean Δ of correct rollouts in the demo's class "
                      f"{fmt(tilt['same_class_mean'])} (n={tilt['same_class_rollouts']}), of another correct class "
                      f"{fmt(tilt['other_class_mean'])} (n={tilt['other_class_rollouts']}), difference "
                      f"{fmt(tilt['difference'])}")
    if report.details.get("first_errors"):
        console.print("first errors (share of student rollouts): " + ", ".join(
            f"{k} {v:.3f}" for k, v in report.details["first_errors"].items()))
    console.print("gate: " + ("[green]passed[/]" if report.passed else "[red]FAILED[/]"))
