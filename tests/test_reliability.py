"""Reliability through the real command line: SIGKILL at random moments and resume to an identical
summary; every bad input is one error line with a hint, a non-zero exit and nothing written; a
diverging or raising cell fails alone; a second process cannot take a run directory in use."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TOY_CLI, smoke_args
from helpers import run_cli as cli

SMOKE = smoke_args("base,single_sampled_demo,grpo", seeds=2)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "suite.yaml"
    path.write_text("training: {steps: 6, checkpoint_every: 1}\n")
    return path


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_identical_summary(env, config_file, tmp_path) -> None:
    reference = tmp_path / "reference"
    start = time.monotonic()
    done = cli(["run", *SMOKE, "--config", str(config_file), "--out", str(reference)], env)
    assert done.returncode == 0, done.stderr
    duration = time.monotonic() - start

    out = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    while kills < 10:
        proc = subprocess.Popen([sys.executable, TOY_CLI, "run", *SMOKE, "--config", str(config_file),
                                 "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, duration * 0.6))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    final = cli(["run", *SMOKE, "--config", str(config_file), "--out", str(out)], env)
    assert final.returncode == 0, final.stderr
    assert kills >= 3, "the run finished before it could be killed often enough"
    assert (out / "summary.json").read_bytes() == (reference / "summary.json").read_bytes()
    records = sorted((out / "cells").glob("*"))
    assert [p.name for p in records] == sorted(p.name for p in (reference / "cells").glob("*"))
    for path in records:
        assert json.loads(path.read_text())["status"] == "ok"     # complete JSON, never partial
    assert not list(out.rglob("*.tmp")) and not list((out / "checkpoints").glob("*.pt"))


def test_sigterm_stops_cleanly_with_a_resume_hint(env, tmp_path) -> None:
    out = tmp_path / "term"
    (tmp_path / "long.yaml").write_text("training: {steps: 400}\n")
    proc = subprocess.Popen([sys.executable, TOY_CLI, "run", *SMOKE, "--config", str(tmp_path / "long.yaml"),
                             "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "provenance.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "run the same command again to resume" in stdout
    assert "Traceback" not in stderr


def test_a_diverging_and_a_raising_cell_fail_alone(env, tmp_path) -> None:
    out = tmp_path / "fail"
    result = cli(["run", *smoke_args("grpo,exploding,raising"), "--out", str(out)], env)
    assert result.returncode == 1
    assert "2 cell(s) failed" in result.stderr and "Traceback" not in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    failed = {f["strategy"]: f for f in summary["failed"]}
    assert set(failed) == {"exploding", "raising"}
    assert failed["exploding"]["phase"] == "train" and failed["exploding"]["step"] == 0
    assert "not finite" in failed["exploding"]["reason"]
    assert "plugin bug" in failed["raising"]["reason"]
    assert {r["strategy"] for r in summary["rows"]} == {"grpo"}       # never a number for a failed cell
    assert "FAILED" in (out / "summary.md").read_text()


def test_a_run_directory_in_use_is_refused(env, tmp_path) -> None:
    import fcntl

    out = tmp_path / "locked"
    out.mkdir()
    with open(out / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write("4242")
        fh.flush()
        result = cli(["run", *SMOKE, "--out", str(out)], env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: run directory {out} is in use by another sdbench process "
                                          "(pid 4242)", "hint: wait for it to finish, or pass another --out"]


BAD_INPUTS = {
    "malformed yaml": (["--config", "{dir}/bad.yaml"], "bad.yaml", "tasks: [unclosed\n", "is malformed"),
    "malformed toml": (["--config", "{dir}/bad.toml"], "bad.toml", "tasks = \n", "is malformed"),
    "unknown key": (["--config", "{dir}/k.yaml"], "k.yaml", "seedz: 2\n", "did you mean 'seeds'"),
    "out of range": (["--seeds", "0"], None, None, "invalid value for 'seeds'"),
    "unknown strategy": (["--strategies", "single_sampled_dem"], None, None, "did you mean 'single_sampled_demo'"),
    "unknown task": (["--tasks", "toy_pik"], None, None, "did you mean 'toy_pick'"),
    "bad hyperparameter": (["--config", "{dir}/h.yaml"], "h.yaml",
                           "strategies: [{name: single_sampled_demo, selection: best}]\n", "invalid hyperparameter"),
    "model not a model": (["--model", "{dir}"], None, None, "is not a model directory"),
    "unknown profile": (["--profile", "quik"], None, None, "did you mean 'quick'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_with_a_hint_and_writes_nothing(env, tmp_path, case: str) -> None:
    args, filename, content, expected = BAD_INPUTS[case]
    if filename:
        (tmp_path / filename).write_text(content)
    out = tmp_path / "out"
    argv = ["run", "--tasks", "toy_pick", "--profile", "smoke", "--out", str(out)]
    result = cli([*argv, *[a.format(dir=tmp_path) for a in args]], env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), lines
    assert expected in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("damage", ["corrupt", "foreign"])
def test_a_damaged_record_in_the_run_directory_is_one_clear_error(env, tmp_path, damage: str) -> None:
    out = tmp_path / "run"
    assert cli(["run", *SMOKE, "--strategies", "base", "--out", str(out)], env).returncode == 0
    record = next((out / "cells").glob("*.json"))
    record.write_text("{\"half" if damage == "corrupt" else json.dumps({"kind": "something else"}))
    def results() -> dict[Path, int]:     # everything but the lock file, which only names the holder's pid
        return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"}

    before = results()
    result = cli(["run", *SMOKE, "--strategies", "base", "--out", str(out)], env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(record) in result.stderr.splitlines()[0] and len(result.stderr.strip().splitlines()) == 2
    assert results() == before
