"""The CLI bad-path sweep: every `sdbench` subcommand option that takes a path, fed a binary file, an
empty file, a directory and a missing path (where that is wrong for it), prints exactly one `error:`
line and one `hint:` line on stderr, exits 2, shows no traceback and writes nothing.

    pytest tests/test_cli_paths.py

Kinds that are valid for an option are left out, and say why: an output directory may exist or be
missing (it is created), an output file may be missing or overwritten, a program's stdin may be any
bytes, a results folder may be empty (the site then says "no results yet"). Commands run in-process
(`sdbench.cli.main`), each in a fresh directory, with options that keep them cheap should a check
ever be missing (`--print-config`, one problem); the paths are checked before any model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import smoke_args

from sdbench.cli import main

IN = ("binary", "empty", "dir", "missing")     # an input file
OUT_DIR = ("binary", "empty")                  # a file where a directory is wanted
OUT_FILE = ("dir",)                            # a directory where a file is wanted
IN_DIR = ("binary", "empty", "missing")        # an input directory
MODEL = ("binary", "empty", "dir", "missing")  # a model directory: none of these holds config.json
Args = Callable[[str, Path], list[str]]
SMOKE = smoke_args("base", tasks="graph_paths", workers=None)

CASES: dict[str, tuple[Args, tuple[str, ...]]] = {
    "run --config": (lambda p, d: ["run", "--config", p, "--print-config"], IN),
    "run --out": (lambda p, d: ["run", "--out", p, *SMOKE, "--print-config"], OUT_DIR),
    "run --model": (lambda p, d: ["run", "--model", p, *SMOKE, "--out", str(d / "run")], MODEL),
    "run --data-path": (lambda p, d: ["run", "--data-path", p, "--tasks", "gsm8k", "--strategies", "base",
                                      "--profile", "smoke", "--seeds", "1", "--out", str(d / "run")], IN),
    "verify --samples": (lambda p, d: ["verify", "--task", "graph_paths", "--samples", p], IN),
    "verify --out": (lambda p, d: ["verify", "--task", "graph_paths", "--samples", str(d / "ok.jsonl"),
                                   "--out", p], OUT_FILE),
    "verify --data-path": (lambda p, d: ["verify", "--task", "gsm8k", "--samples", str(d / "ok.jsonl"),
                                         "--data-path", p], IN),
    "eval --model": (lambda p, d: ["eval", "--model", p, "--tasks", "graph_paths", "--problems", "1"], MODEL),
    "eval --out": (lambda p, d: ["eval", "--model", str(d / "nomodel"), "--tasks", "graph_paths", "--out", p],
                   OUT_FILE),
    "eval --export-dir": (lambda p, d: ["eval", "--model", str(d / "nomodel"), "--tasks", "graph_paths",
                                        "--harness", "lm-eval", "--export-dir", p], OUT_DIR),
    "export lm-eval --out": (lambda p, d: ["export", "lm-eval", "--tasks", "graph_paths", "--problems", "1",
                                           "--out", p], OUT_DIR),
    "export lm-eval --model": (lambda p, d: ["export", "lm-eval", "--tasks", "graph_paths", "--problems", "1",
                                             "--out", str(d / "lm"), "--model", p], MODEL),
    "leaderboard submit SOURCE": (lambda p, d: ["leaderboard", "submit", p, "--results", str(d / "res")], IN),
    "leaderboard submit --results": (lambda p, d: ["leaderboard", "submit", str(d / "ok.jsonl"), "--results", p],
                                     OUT_DIR),
    "leaderboard build --results": (lambda p, d: ["leaderboard", "build", "--results", p, "--out",
                                                  str(d / "site")], IN_DIR),
    "leaderboard build --out": (lambda p, d: ["leaderboard", "build", "--results", str(d / "results"),
                                              "--out", p], OUT_DIR),
    "leaderboard publish --results": (lambda p, d: ["leaderboard", "publish", "--results", p, "--git-remote",
                                                    str(d / "remote.git")], IN_DIR),
    "leaderboard schema --out": (lambda p, d: ["leaderboard", "schema", "--out", p], OUT_FILE),
    "leaderboard schema --check": (lambda p, d: ["leaderboard", "schema", "--check", "--out", p], IN),
    "pretrain --out": (lambda p, d: ["pretrain", "graph_paths", "--steps", "1", "--out", p], OUT_DIR),
    "tasks sample --data-path": (lambda p, d: ["tasks", "sample", "gsm8k", "--data-path", p], IN),
    "tasks check --model": (lambda p, d: ["tasks", "check", "graph_paths", "--model", p, "--problems", "1",
                                          "--samples", "2"], MODEL),
    "sandbox run FILE": (lambda p, d: ["sandbox", "run", p], IN),
    "sandbox run --tests": (lambda p, d: ["sandbox", "run", str(d / "ok.py"), "--tests", p], IN),
    "sandbox run --stdin": (lambda p, d: ["sandbox", "run", str(d / "ok.py"), "--stdin", p], ("dir", "missing")),
    "strategies new --dir": (lambda p, d: ["strategies", "new", "zz_demo", "--dir", p], OUT_DIR),
}


def make_path(kind: str, d: Path) -> Path:
    path = d / f"bad-{kind}"
    if kind == "binary":
        path.write_bytes(b"\x97\xff\xfe\x00\x89PNG\r\n\x1a\n" + bytes(range(256)))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "dir":
        path.mkdir()
    else:
        path = d / "missing" / "x"
    return path


def tree(d: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


@pytest.mark.parametrize(("case", "kind"), [(c, k) for c, (_, kinds) in CASES.items() for k in kinds])
def test_a_bad_path_is_one_error_and_one_hint(case: str, kind: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SDBENCH_DEBUG", raising=False)
    (tmp_path / "ok.jsonl").write_text('{"problem_id": "graph_paths/test/0/0", "completion": "x"}\n')
    (tmp_path / "ok.py").write_text("print(1)\n")
    (tmp_path / "results").mkdir()
    path = make_path(kind, tmp_path)
    before = tree(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(CASES[case][0](str(path), tmp_path))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exit_info.value.code == 2, err
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], err
    assert "Traceback" not in err
    assert tree(tmp_path) == before, "a refused command wrote something"


def test_every_command_that_takes_a_path_is_in_the_sweep() -> None:
    """A new path option must join CASES: every typer parameter annotated `Path` (or a path-valued str)."""
    import inspect

    import typer.models

    from sdbench.cli import app as app_module

    path_options = set()
    for group in [app_module.app, *(g.typer_instance for g in app_module.app.registered_groups)]:
        prefix = next((g.name for g in app_module.app.registered_groups if g.typer_instance is group), None)
        for command in group.registered_commands:
            name = " ".join(filter(None, [prefix, command.name]))
            for param in inspect.signature(command.callback).parameters.values():
                info = param.default
                if param.annotation in ("Path", "Path | None") or param.name in ("data_path", "model"):
                    is_option = isinstance(info, typer.models.OptionInfo) and info.param_decls
                    flag = info.param_decls[0] if is_option else {"source": "SOURCE", "file": "FILE"}[param.name]
                    path_options.add(f"{name} {flag}")
    # the same data loader as `tasks sample --data-path` and `verify --data-path`, which the sweep covers
    same_loader = {"eval --data-path", "export lm-eval --data-path"}
    assert path_options - set(CASES) == same_loader, path_options - set(CASES)
