"""Contained cells, through the real command line (tests/faults_cli.py): a worker SIGKILLed from outside
is run again and the run finishes; killed twice it is a failed-transient cell that a resume completes with
the identical summary; a plan() that blocks forever and one that allocates without bound are stopped by
--cell-timeout and --cell-memory and recorded, while a healthy cell in the same run finishes; the parent
never loads torch (only the workers do)."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import FAULTS_CLI, run_cli, smoke_args

SMALL = smoke_args(workers=None)
cli = functools.partial(run_cli, script=FAULTS_CLI)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "suite.yaml"
    path.write_text("training: {steps: 4, checkpoint_every: 1}\n")
    return path


def workers_of(pid: int) -> list[int]:
    """The cell workers among a process's children (multiprocessing's spawn entry in their command line)."""
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    workers = []
    for child in children:
        try:           # a child that exited since the list was read has no /proc entry any more
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except OSError:
            pass
    return workers


def test_a_worker_killed_from_outside_is_run_again_and_the_run_finishes(env, config_file, tmp_path) -> None:
    reference = tmp_path / "reference"
    args = ["run", *SMALL, "--strategies", "grpo,single_sampled_demo,base", "--workers", "2", "--config",
            str(config_file)]
    assert cli([*args, "--out", str(reference)], env).returncode == 0

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, FAULTS_CLI, *args, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, victim = time.monotonic() + 120, None
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        busy = workers_of(proc.pid)
        if len(busy) == 2 and not list((out / "cells").glob("*.json")):   # both busy, none finished yet
            victim = busy[0]
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=300)
    assert victim is not None, "the run finished before a worker could be killed"
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "its worker died (signal 9); running it again (once)" in stdout
    assert (out / "summary.json").read_bytes() == (reference / "summary.json").read_bytes()


def test_a_worker_killed_twice_is_a_transient_failure_that_a_resume_completes(env, config_file, tmp_path) -> None:
    args = ["run", *SMALL, "--strategies", "suicidal,base", "--workers", "1", "--config", str(config_file)]
    reference = tmp_path / "reference"
    assert cli([*args, "--out", str(reference)], env).returncode == 0

    kills = tmp_path / "kills"
    kills.write_text("2")
    out = tmp_path / "run"
    first = cli([*args, "--out", str(out)], {**env, "FAULTS_KILLS": str(kills)})
    assert first.returncode == 1 and "Traceback" not in first.stderr
    assert first.stderr.splitlines() == ["error: 1 cell(s) failed: toy_pick__suicidal__seed0",
                                         "hint: the transient ones are retried when you run the same command again"]
    record = json.loads((out / "cells" / "toy_pick__suicidal__seed0.json").read_text())
    assert record["status"] == "failed"
    assert record["failure"] == {"phase": "train", "kind": "transient",
                                 "reason": "its worker died (signal 9), twice"}
    assert json.loads((out / "cells" / "toy_pick__base__seed0.json").read_text())["status"] == "ok"

    again = cli([*args, "--out", str(out)], {**env, "FAULTS_KILLS": str(kills)})   # kills is 0 now
    assert again.returncode == 0, again.stderr
    assert "resuming: 1 of 2 cells already finished; retrying 1 failed cell(s)" in again.stdout
    assert (out / "summary.json").read_bytes() == (reference / "summary.json").read_bytes()


def test_a_hanging_and_a_greedy_cell_are_stopped_by_the_limits_and_a_healthy_one_finishes(env, tmp_path) -> None:
    out = tmp_path / "run"
    start = time.monotonic()
    # 1.5 GiB: a grpo worker with its evaluation lane peaks at 0.65 GiB resident on the toy model (measured),
    # the greedy one passes it within a second of reaching plan(); 40 s: a smoke grpo cell takes 3-5 s here,
    # and a fresh worker (the greedy cell's: the hanging one's was killed) spent over 20 s reaching plan() at
    # load 10 (its imports and the model), which a 20 s limit then stopped as a timeout.
    result = cli(["run", *SMALL, "--strategies", "hanging,greedy,grpo", "--workers", "1", "--cell-timeout", "40",
                  "--cell-memory", "1.5G", "--out", str(out)], env)
    wall = time.monotonic() - start
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == ("error: 2 cell(s) failed: toy_pick__greedy__seed0, "
                                             "toy_pick__hanging__seed0")
    failures = {r["strategy"]["name"]: r.get("failure") for r in
                (json.loads(p.read_text()) for p in (out / "cells").glob("*.json"))}
    assert failures["grpo"] is None
    hanging, greedy = failures["hanging"], failures["greedy"]
    assert (hanging["kind"], hanging["phase"]) == ("permanent", "train")
    assert hanging["reason"].startswith("exceeded --cell-timeout 40s (stopped after 4")
    assert (greedy["kind"], greedy["phase"]) == ("permanent", "train")
    assert greedy["reason"].startswith("exceeded --cell-memory 1.50 GiB (resident 1.")
    assert wall < 180     # 40 s hanging + a greedy and a grpo smoke cell, each well under a minute
    limits = json.loads((out / "provenance.json").read_text())["limits"]
    assert limits == {"cell_timeout_s": 40.0, "cell_memory_bytes": 3 * 2**29, "derived": ""}


def test_the_runs_parent_never_loads_torch(tmp_path) -> None:
    # The parent only plans, watches and aggregates; the cell's worker loads torch. Were the parent to load it
    # too, every run would pay torch's import (~1.5 CPU-s) twice: the contained cell's one real cost (issue 31).
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print('torch in parent:', 'torch' in sys.modules, file=sys.stderr))\n"
             "from sdbench.cli import main\nmain()\n")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", probe, "run", "--tasks", "graph_paths", "--strategies", "base",
                           "--seeds", "1", "--profile", "smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "cells" / "graph_paths__base__seed0.json").read_text())["status"] == "ok"
    assert done.stderr.splitlines()[-1] == "torch in parent: False"
