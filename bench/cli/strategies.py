"""`sdbench strategies list|show|new`: the registered demonstration strategies, and new plugins.

    sdbench strategies list            # name, distribution and version, one-line summary
    sdbench strategies list --json
    sdbench strategies show single_sampled_demo
    sdbench strategies new my_demo --dir sdbench-my-demo   # scaffold a plugin package
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Registered demonstration strategies.")


@app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """List every registered strategy (built-ins and plugins); broken plugins are reported, not fatal."""
    from rich.console import Console
    from rich.table import Table

    from sdbench.registry import describe
    from sdbench.strategy import STRATEGIES

    rows = []
    for entry in STRATEGIES.entries():
        summary = describe(entry.obj) if entry.obj is not None else f"failed to import: {entry.error}"
        rows.append({**entry.provenance, "summary": summary, "ok": entry.error is None,
                     "trains": bool(getattr(entry.obj, "trains", False))})
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    console = Console()
    # The name is what a user must type: never cut. The table keeps it whole and wraps the other
    # columns; when the terminal is too narrow for that, one entry per block, the name on its own line.
    widest = max((len(row["name"]) for row in rows), default=4)
    if widest + 50 <= console.width:
        table = Table(title="sdbench strategies")
        table.add_column("name", no_wrap=True)
        table.add_column("distribution", overflow="fold")
        table.add_column("version", overflow="fold")
        table.add_column("summary", overflow="fold")
        for row in rows:
            table.add_row(row["name"], row["distribution"], row["version"], row["summary"],
                          style=None if row["ok"] else "red")
        console.print(table)
    else:
        from rich.padding import Padding
        from rich.text import Text

        for row in rows:
            style = "bold" if row["ok"] else "bold red"
            console.print(Text(row["name"], style=style), soft_wrap=True)
            console.print(Padding(Text(f"{row['distribution']} {row['version']}: {row['summary']}"), (0, 0, 0, 4)))
    for row in rows:
        if not row["ok"]:   # say it outside the table too: a wrapped cell is easy to miss
            console.print(f"[red]plugin {row['name']!r} from distribution {row['distribution']} "
                          f"{row['version']} was skipped[/red]: {row['summary']}")


@app.command("show")
def show_command(name: str = typer.Argument(..., help="strategy name")) -> None:
    """A strategy's method (its docstring) and hyperparameters with their defaults."""
    import inspect
    import sys

    from sdbench.strategy import STRATEGIES

    entry = STRATEGIES.entry(name)
    cls = entry.load()
    module_doc = inspect.getdoc(sys.modules.get(cls.__module__)) or ""
    print(f"{entry.name}  ({entry.distribution} {entry.version})\n")
    print(module_doc or inspect.getdoc(cls) or "")
    print("\nhyperparameters:")
    fields = cls.Params.model_fields
    if not fields:
        print("  (none)")
    for field_name, field in fields.items():
        kind = getattr(field.annotation, "__name__", str(field.annotation))
        desc = f"  # {field.description}" if field.description else ""
        print(f"  {field_name}: {kind} = {field.default!r}{desc}")


@app.command("new")
def new_command(
    name: str = typer.Argument(..., help="strategy name: lowercase letters, digits and underscores"),
    directory: Path | None = typer.Option(None, "--dir", help="where to write the package (default ./sdbench-NAME)"),
) -> None:
    """Scaffold a strategy plugin package (pyproject with the entry point, the strategy, a test)."""
    from sdbench.scaffold import scaffold

    names, files = scaffold(name, directory)
    root = files[0].parent
    print(f"created plugin package {names.distribution} in {root}:")
    for path in files:
        print(f"  {path.relative_to(root)}")
    print("next:")
    print(f"  pip install -e {root}")
    print(f"  pytest {root}")
    print(f"  sdbench run --strategies {names.key} --profile smoke")
