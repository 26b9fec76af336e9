"""`sdbench export lm-eval`: write sdbench tasks as lm-evaluation-harness tasks (YAML + JSONL + utils.py).

    sdbench export lm-eval --tasks graph_paths --out lm_tasks/ --samples 16 --problems 100
    lm-eval run --model hf --model_args pretrained=MODEL_DIR --include_path lm_tasks/ --tasks sdbench_graph_paths

The folder holds no absolute path: it may be moved or copied. `sdbench verify --task T --samples
OUT/.../samples_sdbench_T_<time>.jsonl` regrades lm-eval's logged samples. See sdbench.lmeval_bridge
for what the files hold and how lm-eval's numbers map onto sdbench's.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Export sdbench tasks to other evaluation harnesses.")


@app.command("lm-eval")
def lm_eval_command(
    tasks: str = typer.Option(..., "--tasks", help="comma-separated sdbench task names"),
    out: Path = typer.Option(..., "--out", help="directory for the task YAMLs, data files and utils.py"),
    samples: int = typer.Option(16, "--samples", help="completions per problem (lm-eval `repeats`; a power of 2)"),
    problems: int = typer.Option(100, "--problems", min=1, help="problems per task"),
    split: str = typer.Option("test", "--split", help="task split (test | ood | ...)"),
    model: str | None = typer.Option(None, "--model", help="tokenizer that renders prompts (default: task's)"),
    data_path: str | None = typer.Option(None, "--data-path", help="local data for real-data tasks"),
) -> None:
    """Write lm-eval task configs whose process_results grades with sdbench (pass@k, distinct correct)."""
    from sdbench.cli.paths import check_model, check_output_dir
    from sdbench.lmeval_bridge import export

    check_output_dir(out, "--out")
    if model is not None:        # before any task file is written
        check_model(model, "--model")
    names = export([t.strip() for t in tasks.split(",") if t.strip()], out, samples=samples, problems=problems,
                   split=split, model=model, data_path=data_path)
    print(f"wrote {len(names)} lm-eval task(s) to {out}: {', '.join(names)}")
    print(f"run: lm-eval run --model hf --model_args pretrained=MODEL --include_path {out} "
          f"--tasks {','.join(names)} --log_samples --output_path OUT")
