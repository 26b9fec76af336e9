"""`sdbench pretrain TASK`: train an embedded task's base model from scratch (placeholder, being built)."""

from __future__ import annotations

import typer


def pretrain_command(task: str = typer.Argument(..., help="embedded task name")) -> None:
    """Pretrain the base model of an embedded task."""
    raise typer.Exit(1)
