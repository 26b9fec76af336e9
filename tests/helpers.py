"""Scaffolding shared by the test files: the toy command lines, smoke run arguments and configs, a quiet console.

    from helpers import TOY_CLI, FAULTS_CLI, run_cli, smoke_args, smoke_config, smoke_training, quiet_console
    done = run_cli(["run", *smoke_args("base,grpo"), "--out", str(out)], env)      # env: the conftest fixture
    config = smoke_config(out=str(out), strategies=["base"])                         # a resolved RunConfig
    cfg = smoke_training(steps=2)                                                    # the smoke TrainingConfig
    hand_graph()                    # a hand-built graph_paths problem (per-token validity, positional copying)

The toy task (`toy_pick`, tests/toy.py) and its tiny model come from the fixtures in tests/conftest.py; the
command lines tests/toy_cli.py and tests/faults_cli.py register it in their own process (they read the model
directory from TOY_MODEL_DIR, which the `env` fixture sets). Imported by test files (pytest puts tests/ on
sys.path through its rootdir conftest); it does no work at import.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

TESTS = Path(__file__).parent
TOY_CLI = str(TESTS / "toy_cli.py")          # `sdbench` with the toy task and two misbehaving strategies
FAULTS_CLI = str(TESTS / "faults_cli.py")    # toy_cli plus strategies that hang, hog memory or get killed


def run_cli(args: Sequence[str], env: dict[str, str], *, script: str = TOY_CLI, timeout: float = 300,
            **kw: Any) -> subprocess.CompletedProcess:
    """`python script ARGS` in a child process, output captured as text (the tests read its error lines)."""
    return subprocess.run([sys.executable, script, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          **kw)


def smoke_args(strategies: str | None = None, *, seeds: int = 1, tasks: str = "toy_pick",
               workers: int | None = 1) -> list[str]:
    """`sdbench run` flags of a smoke-profile run (strategies or workers None: the caller's or the CLI's)."""
    return ["--tasks", tasks, *([] if strategies is None else ["--strategies", strategies]), "--seeds", str(seeds),
            "--profile", "smoke", *([] if workers is None else ["--workers", str(workers)])]


def smoke_config(**overrides: Any):  # -> sdbench.config.RunConfig
    """The resolved smoke-profile config of a run on the toy task, one seed, one worker; `overrides` replace
    top-level keys (tasks, strategies, seeds, out, training, evaluation, ...)."""
    from sdbench.config import resolve_config

    return resolve_config(overrides={"profile": "smoke", "tasks": ["toy_pick"], "seeds": 1, "workers": 1,
                                     **overrides})


def smoke_training(**update: Any):  # -> sdbench.config.TrainingConfig
    """The smoke profile's TrainingConfig with the fields in `update` replaced (model_copy: no re-validation,
    as the trainer tests have always built theirs)."""
    from sdbench.config import resolve_config

    return resolve_config(overrides={"profile": "smoke"}).training.model_copy(update=update)


def quiet_console() -> Console:
    """A console that writes to memory: no terminal output, and no file handle left open."""
    return Console(file=io.StringIO(), force_terminal=False)


def hand_graph():  # -> sdbench.task.Problem
    """A graph_paths problem small enough to reason about by hand (tests/test_graph_paths.py, test_gate.py):
    s -> {a, b}; a -> {h, g}; b -> {h}; h -> {x, y, z}; g -> {x}; x, y -> t; z is a dead end."""
    from sdbench.task import Problem

    return Problem(id="hand", prompt="", reference="s a h x t",
                   data={"target": "t", "paths": ["s a h x t", "s a h y t", "s a g x t", "s b h x t", "s b h y t"],
                         "edges": {"s": ["a", "b"], "a": ["h", "g"], "b": ["h"], "h": ["x", "y", "z"],
                                   "g": ["x"], "x": ["t"], "y": ["t"]}})
