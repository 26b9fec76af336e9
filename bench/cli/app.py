"""The typer application: one line per command group, each defined in its own module.

Run `sdbench --help` for the list. Command modules import torch and friends inside the command
functions, so `sdbench --help` stays fast.
"""

from __future__ import annotations

import typer

from sdbench.cli import eval as eval_cli
from sdbench.cli import export as export_cli
from sdbench.cli import leaderboard, models, pretrain, run, sandbox, strategies, tasks, verify

app = typer.Typer(name="sdbench", no_args_is_help=True, add_completion=False,
                  help="Benchmark demonstration strategies for on-policy self-distillation.")

app.command("run")(run.run_command)
app.command("pretrain")(pretrain.pretrain_command)
app.command("verify")(verify.verify_command)
app.command("eval")(eval_cli.eval_command)
app.add_typer(strategies.app, name="strategies")
app.add_typer(tasks.app, name="tasks")
app.add_typer(models.app, name="models")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(leaderboard.app, name="leaderboard")
app.add_typer(export_cli.app, name="export")
