"""`sdbench strategies list|show`: the registered demonstration strategies."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Registered demonstration strategies.")
