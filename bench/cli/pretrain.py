"""`sdbench pretrain TASK`: train an embedded task's base model from scratch, reproducibly.

    sdbench pretrain graph_paths --seed 0 --out tasks/assets/graph_paths --force   # the shipped model
    sdbench pretrain graph_paths --hidden 96 --layers 4 --steps 3000               # another recipe

Every option left out comes from the task's recipe (`pretrain_defaults`, then sdbench.pretrain.DEFAULTS),
so `--seed S` alone reproduces the shipped model.

Writes model, tokenizer and pretrain.json to --out (default runs/pretrained/TASK-seedS), atomically.
Heavy imports (torch, transformers) happen inside the command so `sdbench --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer


def pretrain_command(
    task: str = typer.Argument(..., help="embedded task name (see `sdbench tasks list`)"),
    seed: int = typer.Option(0, "--seed", help="seed of the corpus, the initialization and the data order"),
    out: Path | None = typer.Option(None, "--out", help="output directory [default: runs/pretrained/TASK-seedS]"),
    steps: int | None = typer.Option(None, "--steps", min=1, help="optimizer steps [default: the task's recipe]"),
    hidden: int | None = typer.Option(None, "--hidden", min=8, help="model width [default: the task's recipe]"),
    layers: int | None = typer.Option(None, "--layers", min=1, help="transformer layers [default: the recipe]"),
    heads: int | None = typer.Option(None, "--heads", min=1, help="attention heads [default: the recipe]"),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="sequences per step [default: recipe]"),
    lr: float | None = typer.Option(None, "--lr", min=0.0, help="peak learning rate [default: the recipe]"),
    threads: int = typer.Option(1, "--threads", min=1, help="CPU threads (results are reproducible per count)"),
    force: bool = typer.Option(False, "--force", help="replace an existing output directory"),
) -> None:
    """Pretrain the base model of an embedded task."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from sdbench.errors import UserError
    from sdbench.pretrain import pretrain, resolve_recipe
    from sdbench.task import load_task

    target = out if out is not None else Path("runs") / "pretrained" / f"{task}-seed{seed}"
    loaded = load_task(task)  # an unknown name raises the registry's UserError (one line, with a hint)
    if target.exists() and not force:  # fail before minutes of training, not after
        raise UserError(f"{str(target)!r} already exists", "pass --force to replace it, or pick another --out")
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]pretrain[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn(), console=console,
                  transient=False) as progress:
        shape = {"steps": steps, "hidden": hidden, "layers": layers, "heads": heads, "batch_size": batch_size,
                 "lr": lr}
        bar = progress.add_task(task, total=resolve_recipe(loaded, **shape)["steps"], loss=float("nan"))
        record = pretrain(loaded, seed=seed, out_dir=target, threads=threads, force=force,
                          on_step=lambda step, loss: progress.update(bar, completed=step, loss=loss), **shape)
    console.print(f"wrote {record['out_dir']}: final loss {record['final_loss']:.3f}, "
                  f"{record['parameters']:,} parameters, {record['wall_time_s']:.0f} s")
