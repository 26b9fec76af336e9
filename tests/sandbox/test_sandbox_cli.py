"""`sdbench sandbox info|run`. Run: ``pytest tests/sandbox/test_sandbox_cli.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdbench.cli import main


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    main(["sandbox", "info", "--json"])
    layers = json.loads(capsys.readouterr().out)
    assert {"bwrap", "landlock", "seccomp", "pidns", "rlimits", "timeout"} <= set(layers)
    for layer in layers.values():
        assert isinstance(layer["active"], bool) and layer["detail"]


def test_info_table(capsys: pytest.CaptureFixture[str]) -> None:
    main(["sandbox", "info"])
    assert "landlock" in capsys.readouterr().out


def test_run_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "prog.py"
    prog.write_text("print('hello')\n")
    main(["sandbox", "run", str(prog), "--timeout", "5", "--memory-mb", "256"])
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "ok" and result["exit_code"] == 0 and result["stdout_tail"] == "hello\n"
    assert {"status", "exit_code", "duration_s", "stdout_tail", "stderr_tail", "layers"} <= set(result)


def test_run_with_tests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog, tests = tmp_path / "prog.py", tmp_path / "tests.py"
    prog.write_text("def f(x):\n    return x + 1\n")
    tests.write_text("assert f(1) == 2\n")
    main(["sandbox", "run", str(prog), "--tests", str(tests)])
    assert json.loads(capsys.readouterr().out)["passed"] is True


def test_run_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "prog.py"
    prog.write_text("while True:\n    pass\n")
    main(["sandbox", "run", str(prog), "--timeout", "1"])
    assert json.loads(capsys.readouterr().out)["status"] == "timeout"


def test_missing_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sandbox", "run", str(tmp_path / "nope.py")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error: program" in err and "does not exist" in err and "hint:" in err
    assert "Traceback" not in err


def test_unparsable_tests_are_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog, tests = tmp_path / "prog.py", tmp_path / "tests.py"
    prog.write_text("x = 1\n")
    tests.write_text("assert (\n")
    with pytest.raises(SystemExit) as exc:
        main(["sandbox", "run", str(prog), "--tests", str(tests)])
    assert exc.value.code == 2 and "does not parse" in capsys.readouterr().err


def test_required_layers(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SDBENCH_SANDBOX_REQUIRE", "rlimits,no-such-layer")
    with pytest.raises(SystemExit) as exc:
        main(["sandbox", "info"])
    assert exc.value.code == 2
    assert "no-such-layer: unknown layer" in capsys.readouterr().err
    monkeypatch.setenv("SDBENCH_SANDBOX_REQUIRE", "rlimits,timeout")
    main(["sandbox", "info", "--json"])
