"""Path checks for command options: a bad path is one `error:` line and one `hint:` line, before any work.

    from sdbench.cli.paths import check_output_dir, check_output_file, read_text_file
    text = read_text_file(path, "samples file", "pass a JSONL file to --samples")
    check_output_dir(out, "--out")          # before anything is computed, so nothing is half-written

An input file must exist, be a file, be UTF-8 text and not be empty; an output directory may be
missing (it is created) but not a file; an output file may be missing or overwritten but not a
directory, and its parent must not be a file.
"""

from __future__ import annotations

from pathlib import Path

from sdbench.errors import UserError


def read_text_file(path: Path, what: str, hint: str, *, empty_ok: bool = False) -> str:
    """The file's text, or a UserError saying why it cannot be used (missing, a directory, binary, empty).

    `empty_ok`: the caller says what an empty file lacks in its own words.
    """
    if path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a directory", hint)
    if not path.is_file():
        raise UserError(f"{what} {str(path)!r} does not exist", hint)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start})", hint) from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {str(path)!r}: {exc.strerror}", "check the path and its permissions") \
            from None
    if not text.strip() and not empty_ok:
        raise UserError(f"{what} {str(path)!r} is empty", hint)
    return text


def check_input_dir(path: Path, what: str, hint: str) -> None:
    if not path.exists():
        raise UserError(f"{what} {str(path)!r} does not exist", hint)
    if not path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a file, not a directory", hint)


def check_output_dir(path: Path, option: str) -> None:
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{option} {str(path)!r}: {str(parent)!r} is a file, not a directory",
                            f"pass a directory (new or existing) to {option}")


def check_output_file(path: Path, option: str) -> None:
    if path.is_dir():
        raise UserError(f"{option} {str(path)!r} is a directory", f"pass a file path to {option}")
    check_output_dir(path.parent, option)


def check_model(model: str, option: str) -> None:
    """A local model path must be a directory with config.json (a hub id is checked when it loads)."""
    from sdbench.models import is_local

    if is_local(model) and not (Path(model).expanduser() / "config.json").is_file():
        raise UserError(f"{option} {model!r} is not a model directory (no config.json)",
                        "pass a directory written by save_pretrained, or a hub id")
