"""Integrity and two writers, through the real command line (tests/faults_cli.py): a flipped byte in a
checkpoint restarts its cell from step 0 with the same result; an edited count in a record and a damaged
samples file are one error line for `run` and for `leaderboard submit`; counts that disagree with the stored
samples are refused by submit; two concurrent `--force-new` runs and two concurrent submits never mix or
lose results."""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import FAULTS_CLI, run_cli, smoke_args

BASE = ["run", *smoke_args()]
cli = functools.partial(run_cli, script=FAULTS_CLI)


@pytest.fixture(scope="module")
def base_run(env, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("base") / "run"
    assert cli([*BASE, "--strategies", "base", "--out", str(out)], env).returncode == 0
    return out


def copy_run(src: Path, dst: Path) -> Path:
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    return dst


def test_a_flipped_byte_in_a_checkpoint_restarts_the_cell_from_step_0_with_the_same_result(env, tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("training: {steps: 12, checkpoint_every: 1}\n")
    args = [*BASE, "--strategies", "grpo", "--config", str(config)]
    reference = tmp_path / "reference"
    assert cli([*args, "--out", str(reference)], env).returncode == 0

    out = tmp_path / "run"
    checkpoint = out / "checkpoints" / "toy_pick__grpo__seed0.pt"
    proc = subprocess.Popen([sys.executable, FAULTS_CLI, *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint.is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130, "the cell finished before it could be stopped mid-training"
    data = bytearray(checkpoint.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])    # eight bytes flipped
    checkpoint.write_bytes(bytes(data))

    resumed = cli([*args, "--out", str(out)], env)
    assert resumed.returncode == 0, resumed.stderr
    assert (f"checkpoint {checkpoint} fails its integrity check (its sha256 does not match its content): "
            "cell toy_pick__grpo__seed0 restarts from step 0") in resumed.stdout.replace("\n", "")
    assert (out / "summary.json").read_bytes() == (reference / "summary.json").read_bytes()


@pytest.mark.parametrize("command", ["run", "submit"])
def test_an_edited_count_in_a_record_is_one_error_line(env, base_run, tmp_path, command: str) -> None:
    out = copy_run(base_run, tmp_path / "run")
    record = out / "cells" / "toy_pick__base__seed0.json"
    text = record.read_text()
    edited = text.replace('"c": 2,', '"c": 7,', 1)
    assert edited != text
    record.write_text(edited)          # still valid JSON, still within the schema (c <= n = 8)
    args = [*BASE, "--strategies", "base", "--out", str(out)] if command == "run" else \
        ["leaderboard", "submit", str(out), "--results", str(tmp_path / "results")]
    result = cli(args, env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: record {record} fails its integrity check (its content changed after it was written)",
        "hint: delete that file to re-run its cell"]
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").iterdir())


def test_a_damaged_samples_file_is_one_error_line(env, base_run, tmp_path) -> None:
    import gzip

    out = copy_run(base_run, tmp_path / "run")
    samples = out / "samples" / "toy_pick__base__seed0.jsonl.gz"
    samples.write_bytes(gzip.compress(b'{"garbage": true}\n', mtime=0))
    for args in ([*BASE, "--strategies", "base", "--out", str(out)],
                 ["leaderboard", "submit", str(out), "--results", str(tmp_path / "results")]):
        result = cli(args, env)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"error: samples file {samples} fails its integrity check (its sha256 differs from the one its "
            "record holds)", "hint: delete it and its record to re-run that cell"]


def test_submit_checks_counts_against_the_stored_samples(toy_task, base_run, tmp_path) -> None:
    from sdbench.errors import UserError
    from sdbench.leaderboard.submit import submit
    from sdbench.runs.store import RunStore

    out = copy_run(base_run, tmp_path / "run")
    store = RunStore(out)
    record = store.read_record("toy_pick__base__seed0")
    samples = store.read_samples(record.key)
    first = next(s for s in samples if s["correct"])
    first["correct"] = False            # the record (rewritten with a fresh hash) still counts it correct
    store.write_record(record.key, record, samples)
    problem = next(p for p in record.eval[first["checkpoint"]][first["split"]].problems
                   if p.id == first["problem_id"])
    with pytest.raises(UserError) as caught:
        submit(out, tmp_path / "results", "x")
    assert caught.value.message == (
        f"record {store.record_path(record.key)}: {first['checkpoint']}/{first['split']}/{problem.id} says "
        f"n={problem.n}, c={problem.c} but its samples count n={problem.n}, c={problem.c - 1}")


def test_two_concurrent_submits_file_once(env, base_run, tmp_path) -> None:
    results = tmp_path / "results"
    procs = [subprocess.Popen([sys.executable, FAULTS_CLI, "leaderboard", "submit", str(base_run), "--name", name,
                               "--results", str(results)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for name in ("one", "two")]
    outcomes = sorted((p.wait(timeout=300), p.communicate()[1]) for p in procs)
    assert [code for code, _ in outcomes] == [0, 2]
    assert outcomes[1][1].startswith("error: this run is already submitted as ")
    assert [p.name.endswith(".json.gz") for p in results.iterdir()] == [True]


def test_two_concurrent_force_new_runs_never_share_the_directory(env, tmp_path) -> None:
    out = tmp_path / "run"
    configs = []
    for steps in (3, 4):
        configs.append(tmp_path / f"s{steps}.yaml")
        configs[-1].write_text(f"training: {{steps: {steps}}}\n")
    procs = [subprocess.Popen([sys.executable, FAULTS_CLI, *BASE, "--strategies", "grpo", "--config", str(c),
                               "--out", str(out), "--force-new"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in configs]
    outcomes = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in outcomes)
    assert codes in ([0, 0], [0, 2]), outcomes        # one after the other, or the second refused
    refused = [err for code, err in outcomes if code == 2]
    assert all("is in use by another sdbench process" in err for err in refused)
    config = json.loads((out / "config.json").read_text())
    records = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert len(records) == 1 and records[0]["config_hash"] == config["config_hash"]
    assert records[0]["train"]["steps"] == config["config"]["training"]["steps"]


def test_force_new_reads_a_directory_being_claimed_or_half_cleared_as_a_run_directory(tmp_path) -> None:
    """The window the concurrent test above hits at random, made deterministic: while one run claims the
    directory, its only entries are `.lock` and the temp file of config.json; a second --force-new must
    take that for a run directory (and wait for the lock), not call it foreign."""
    from sdbench.runs.runner import _foreign_entries, _start_fresh
    from sdbench.runs.store import RunStore

    root = tmp_path / "run"
    root.mkdir()
    (root / ".lock").write_text("1")
    (root / ".config.json.x1y2.tmp").write_text("{")
    assert not _foreign_entries(root)
    (root / "notes.txt").write_text("mine")
    assert _foreign_entries(root)                  # a user's file, no config.json: foreign
    (root / "config.json").write_text("{}")
    (root / "cells").mkdir()
    assert not _foreign_entries(root)
    _start_fresh(RunStore(root))
    assert sorted(p.name for p in root.iterdir()) == [".lock"]
