"""`sdbench sandbox info|run`: the sandbox for generated code.

    sdbench sandbox info                     # which isolation layers are active here, and why not
    sdbench sandbox info --json
    sdbench sandbox run prog.py --timeout 5 --memory-mb 256      # JSON result on stdout
    sdbench sandbox run prog.py --tests tests.py                 # grade against assert-style tests
    sdbench sandbox run prog.py --stdin input.txt
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Sandbox for generated code: probe layers, run a program.")


def _read_source(path: Path, what: str) -> str:
    """A Python source file's text: UTF-8 (PEP 3120) and not empty, else one error line."""
    from sdbench.cli.paths import read_text_file

    return read_text_file(path, what, "pass the path of a Python source file (UTF-8 text)")


def _read_stdin(path: Path) -> bytes:
    """The bytes fed to the program: any content, empty included; only a missing file or a directory fails."""
    from sdbench.cli.paths import check_input_dir
    from sdbench.errors import UserError

    if path.is_dir():
        raise UserError(f"stdin file {str(path)!r} is a directory", "pass a file whose bytes the program reads")
    if not path.is_file():
        check_input_dir(path, "stdin file", "pass a file whose bytes the program reads")   # raises: missing
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read stdin file {str(path)!r}: {exc.strerror}",
                        "check the path and its permissions") from None


@app.command("info")
def info_command(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Probe the isolation layers (bubblewrap, namespaces, uid, Landlock, seccomp, rlimits) and report them."""
    from sdbench.sandbox import sandbox_info

    info = sandbox_info()
    if as_json:
        print(json.dumps(info.to_dict(), indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sdbench sandbox layers")
    for col in ("layer", "active", "detail"):
        table.add_column(col)
    for layer in info.layers.values():
        table.add_row(layer.name, "yes" if layer.active else "no", layer.detail,
                      style=None if layer.active else "yellow")
    Console().print(table)


@app.command("run")
def run_command(
    file: Path = typer.Argument(..., help="Python program to run in the sandbox"),
    timeout: float = typer.Option(10.0, "--timeout", help="wall-clock limit in seconds"),
    memory_mb: int = typer.Option(512, "--memory-mb", help="address-space limit in MiB"),
    tests: Path | None = typer.Option(None, "--tests", help="assert-style tests to grade the program against"),
    stdin: Path | None = typer.Option(None, "--stdin", help="file fed to the program's stdin"),
) -> None:
    """Run FILE in a fresh sandbox and print the result as JSON (status, exit code, output tails, layers)."""
    from sdbench.errors import UserError
    from sdbench.sandbox import run_program, run_tests

    if timeout <= 0 or memory_mb <= 0:
        raise UserError("--timeout and --memory-mb must be positive", "e.g. --timeout 5 --memory-mb 256")
    source = _read_source(file, "program")
    if tests is not None:
        test_source = _read_source(tests, "tests file")
        try:
            result = run_tests(source, test_source, timeout=timeout, memory_mb=memory_mb).to_dict()
        except SyntaxError as exc:
            raise UserError(f"tests file {str(tests)!r} does not parse: {exc.msg} (line {exc.lineno})",
                            "the tests must be valid Python") from None
    else:
        data = _read_stdin(stdin) if stdin is not None else None
        result = run_program(source, stdin=data, timeout=timeout, memory_mb=memory_mb).to_dict()
    print(json.dumps(result, indent=1))
