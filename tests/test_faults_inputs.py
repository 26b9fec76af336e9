"""A full disk and hostile inputs: ENOSPC (a real small tmpfs where this process may mount one, else an
injected OSError) is one error line and, once space is back, a resume gives the uninterrupted summary;
YAML duplicate keys, a 10**6-element list, a duplicated task, a newline in a path and an absurdly large run
each get one error/hint pair, exit 2, nothing written."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from helpers import FAULTS_CLI, run_cli, smoke_args

BASE = ["run", *smoke_args()]
cli = functools.partial(run_cli, script=FAULTS_CLI, stdin=subprocess.DEVNULL)


def mounted_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_is_one_error_line_and_a_resume_after_space_returns_gives_the_same_summary(env, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("training: {steps: 3, checkpoint_every: 1}\n")
    args = [*BASE, "--strategies", "grpo,base", "--config", str(config)]
    reference = tmp_path / "reference"
    assert cli([*args, "--out", str(reference)], env).returncode == 0

    disk = tmp_path / "disk"
    real = mounted_tmpfs(disk, "4m")
    try:
        filler = disk / "filler"
        if real:       # leave 64 KiB: the config and provenance fit, a checkpoint (~450 KB) does not
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            filler.write_bytes(b"\0" * (free - 64 * 1024))
        else:          # injected: writes in `disk` fail with ENOSPC while `filler` exists
            filler.write_bytes(b"")
            env = {**env, "FAULTS_FULL": str(filler)}
        out = disk / "run"
        full = cli([*args, "--out", str(out)], env)
        lines = full.stderr.splitlines()
        assert full.returncode == 2 and len(lines) == 2 and "Traceback" not in full.stderr, full.stderr
        assert lines[0].startswith(f"error: cannot write {out}/") and ": No space left on device (" in lines[0]
        assert lines[0].endswith(" MiB free there)")
        assert lines[1] == ("hint: free space on that disk (or pass another --out), then run the same command "
                            "again to resume")
        for record in (out / "cells").glob("*.json"):      # what did get written: whole, and retried later
            data = json.loads(record.read_text())
            assert data["status"] == "ok" or data["failure"]["kind"] == "transient"
        filler.unlink()                                      # space is back
        resumed = cli([*args, "--out", str(out)], env)
        assert resumed.returncode == 0, resumed.stderr
        assert (out / "summary.json").read_bytes() == (reference / "summary.json").read_bytes()
    finally:
        if real:
            subprocess.run(["umount", str(disk)], check=False)


BAD = {   # case: (config file text or None, extra arguments, the error line's expected start)
    "duplicate key at the top": ("seeds: 1\nseeds: 2\n", [],
                                 "error: config key 'seeds' is given twice (lines 1 and 2)"),
    "duplicate key nested": ("training:\n  steps: 3\n  lr: 0.1\n  steps: 4\n", [],
                             "error: config key 'steps' is given twice (lines 2 and 4)"),
    "a list of 1001 strategies": ("strategies:\n" + "  - base\n" * 1001, [],
                                  "error: config file 'c.yaml': the list at line 2 has more than 1000 entries"),
    "a 10**6-element list": ("tasks: [" + ", ".join(["toy_pick"] * 10**6) + "]\n", [],
                             "error: config file 'c.yaml' is 10000008 characters; at most 1048576 are read"),
    "a duplicated task": (None, ["--tasks", "toy_pick,toy_pick"],
                          "error: invalid value for 'config': Value error, task 'toy_pick' is listed twice"),
    "a newline in the run directory": (None, ["--out", "{tmp}/a\nb"],
                                       "error: invalid value for 'out': Value error, contains a control character "
                                       "('\\n' at position "),
    "an absurdly large run": ("seeds: 1000\ntraining: {steps: 1000000, prompts_per_step: 4096, "
                              "rollouts_per_prompt: 1024}\n", ["--strategies", "grpo"],
                              "error: this run is estimated at "),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_error_and_hint_and_writes_nothing(env, tmp_path, case: str) -> None:
    text, extra, expected = BAD[case]
    args = [*BASE, "--strategies", "base", "--out", str(tmp_path / "out")]
    if text is not None:
        (tmp_path / "c.yaml").write_text(text)
        args += ["--config", str(tmp_path / "c.yaml")]
    result = cli([*args, *[a.format(tmp=tmp_path) for a in extra]], env)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 2, result.stderr
    assert lines[0].startswith(expected) and lines[1].startswith("hint: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == (["c.yaml"] if text is not None else [])


def test_a_million_tasks_are_refused_in_well_under_a_second() -> None:
    from sdbench.config import read_config_file, resolve_config
    from sdbench.errors import UserError

    start = time.perf_counter()
    with pytest.raises(UserError, match="tasks lists 1000000 entries; at most 1000 are allowed"):
        resolve_config(overrides={"tasks": ["toy_pick"] * 10**6, "profile": "smoke"})
    assert time.perf_counter() - start < 0.5
    # the same in a file, under the size bound: 1001 one-letter entries are refused while parsing
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"faults-list-{os.getpid()}.yaml"
    path.write_text("tasks:\n" + "- a\n" * 10**5)
    try:
        start = time.perf_counter()
        with pytest.raises(UserError, match="the list at line 2 has more than 1000 entries"):
            read_config_file(path)
        assert time.perf_counter() - start < 0.5
    finally:
        path.unlink()


def test_an_absurd_run_goes_ahead_with_yes_only(env, tmp_path) -> None:
    from sdbench.cli.run import MAX_WORKER_HOURS
    from sdbench.config import resolve_config
    from sdbench.runs.cell import plan_cells
    from sdbench.runs.cost import run_seconds

    config = resolve_config(overrides={"profile": "quick", "tasks": ["graph_paths"], "seeds": 1000,
                                       "training": {"steps": 1_000_000, "prompts_per_step": 4096,
                                                    "rollouts_per_prompt": 1024}})
    total, _ = run_seconds(config, plan_cells(config))
    assert total / 3600 > 1e9 > MAX_WORKER_HOURS
    quick = resolve_config(overrides={"profile": "quick"})        # the default suite stays far below it
    total, worst = run_seconds(quick, plan_cells(quick))
    assert total / 3600 < 1 and worst < 120


def test_the_default_cell_timeout_scales_with_the_load_per_core(monkeypatch) -> None:
    from sdbench.config import resolve_config
    from sdbench.runs import cost
    from sdbench.runs.cell import plan_cells

    config = resolve_config(overrides={"profile": "full", "tasks": ["graph_paths"], "strategies": ["grpo"]})
    cells = plan_cells(config)
    _, worst = cost.run_seconds(config, cells)
    assert 10 * worst > cost.MIN_TIMEOUT_S        # a full cell's bound is above the floor, so the scaling shows
    monkeypatch.setattr(cost.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cost.os, "getloadavg", lambda: (0.5, 0.5, 0.5))           # quiet: the estimate as is
    assert cost.default_limits(config, cells).timeout_s == 10 * worst
    monkeypatch.setattr(cost.os, "getloadavg", lambda: (8.0, 8.0, 8.0))           # 4 runnable per core
    busy = cost.default_limits(config, cells)
    assert busy.timeout_s == 10 * worst * 4.0
    assert "x the load per core at the start (4.0)" in busy.derived
