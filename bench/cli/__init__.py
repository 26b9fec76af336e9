"""The `sdbench` command line: `sdbench run`, `sdbench pretrain`, `sdbench strategies ...`, ...

Each command group lives in its own module of this package and is mounted in `app.py`; this file
only turns a `UserError` into one clear line and a non-zero exit (tracebacks only with --debug).
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    from sdbench.cli.app import app
    from sdbench.errors import UserError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("SDBENCH_DEBUG") == "1"
    if "--debug" in args:
        args.remove("--debug")
    try:
        code = app(args=args, prog_name="sdbench", standalone_mode=False)
        if isinstance(code, int) and code != 0:   # typer.Exit(n) comes back as a return value here
            sys.exit(code)
    except UserError as err:
        if debug:
            raise
        print(f"error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
