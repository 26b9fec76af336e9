"""`sdbench leaderboard ...`: submit a run, build the static site, publish it, export the schema.

    sdbench leaderboard submit runs/default --name my-run
    sdbench leaderboard build [--results leaderboard/results] [--out leaderboard]
    sdbench leaderboard publish --git-remote URL [--branch gh-pages] | --hf-dataset ORG/NAME
    sdbench leaderboard schema [--out leaderboard/schema.json] [--check]

Paths default to the repository's leaderboard/ folder relative to the current directory. Every
refusal is one line (a UserError); the leaderboard modules are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Submit results, build and publish the leaderboard.")

RESULTS = Path("leaderboard/results")
SITE = Path("leaderboard")
SCHEMA = Path("leaderboard/schema.json")


@app.command("submit")
def submit_command(
    source: Path = typer.Argument(..., help="a run directory (sdbench run --out) or a results .json file"),
    name: str | None = typer.Option(None, "--name", help="results name (default: the run directory's name)"),
    results: Path = typer.Option(RESULTS, "--results", help="folder of submitted results"),
) -> None:
    """Validate a finished run (recomputing its summary from the counts) and file it as results."""
    from sdbench.cli.paths import check_output_dir
    from sdbench.leaderboard.submit import submit

    check_output_dir(results, "--results")
    path = submit(source, results, name)
    print(f"submitted {path} (build the site with `sdbench leaderboard build`)")


@app.command("build")
def build_command(
    results: Path = typer.Option(RESULTS, "--results", help="folder of submitted results"),
    out: Path = typer.Option(SITE, "--out", help="where index.html, README.md and plots/ go"),
) -> None:
    """Generate index.html, README.md and plots from the results (byte-for-byte reproducible)."""
    from sdbench.cli.paths import check_input_dir, check_output_dir
    from sdbench.leaderboard.site import build_site

    check_input_dir(results, "results directory", "pass the folder `sdbench leaderboard submit` writes to --results")
    check_output_dir(out, "--out")
    written = build_site(results, out)
    print(f"built {len(written)} file(s): {out / 'index.html'}, {out / 'README.md'}")


@app.command("publish")
def publish_command(
    git_remote: str | None = typer.Option(None, "--git-remote", help="any git remote URL or path"),
    branch: str = typer.Option("gh-pages", "--branch", help="branch of --git-remote to push the site to"),
    hf_dataset: str | None = typer.Option(None, "--hf-dataset", help="Hugging Face dataset ORG/NAME"),
    results: Path = typer.Option(RESULTS, "--results", help="folder of submitted results"),
) -> None:
    """Build the site from the results and push it to a git branch and/or an HF dataset."""
    from sdbench.cli.paths import check_input_dir
    from sdbench.errors import UserError
    from sdbench.leaderboard.publish import publish_git, publish_hf

    if not git_remote and not hf_dataset:
        raise UserError("nothing to publish to", "pass --git-remote URL and/or --hf-dataset ORG/NAME")
    check_input_dir(results, "results directory", "pass the folder `sdbench leaderboard submit` writes to --results")
    if git_remote:
        commit = publish_git(results, git_remote, branch)
        print(f"published to {git_remote} branch {branch} at {commit[:12]}")
    if hf_dataset:
        print(f"published to {publish_hf(results, hf_dataset)}")


@app.command("schema")
def schema_command(
    out: Path = typer.Option(SCHEMA, "--out", help="where to write the JSON Schema"),
    check: bool = typer.Option(False, "--check", help="only check that the file is current"),
) -> None:
    """Export the results JSON Schema (v2) from the pydantic models."""
    from sdbench.cli.paths import check_output_file
    from sdbench.errors import UserError
    from sdbench.leaderboard.schema import schema_json
    from sdbench.runs.store import atomic_write_bytes

    check_output_file(out, "--out")
    text = schema_json()
    if check:
        if not out.is_file() or out.read_bytes() != text.encode():   # bytes: a binary file is just "out of date"
            raise UserError(f"{out} is out of date", "run `sdbench leaderboard schema`")
        print(f"{out} is current")
        return
    atomic_write_bytes(out, text.encode())
    out.chmod(0o644)
    print(f"wrote {out}")
