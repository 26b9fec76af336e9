"""Shared fixtures: the toy task registered under the name `toy_pick`, with a tiny random model, and the
environment of the toy command lines (tests/toy_cli.py, tests/faults_cli.py). Helpers that are not fixtures
(run_cli, smoke_args, smoke_config, smoke_training, quiet_console) are in tests/helpers.py."""

from __future__ import annotations

import os

import pytest
from toy import ToyPick, build_tiny_model


@pytest.fixture(scope="session")
def toy_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("toy_model"), fit_steps=60))


@pytest.fixture(scope="session")
def toy_task(toy_model_dir: str) -> ToyPick:
    from sdbench.task import TASKS

    ToyPick.model_dir = toy_model_dir
    os.environ["TOY_MODEL_DIR"] = toy_model_dir    # for cell workers (spawned: they import toy afresh)
    if "toy_pick" not in TASKS:
        TASKS.register("toy_pick", ToyPick, distribution="sdbench-tests")
    return ToyPick()


@pytest.fixture(scope="session")
def env(toy_model_dir: str) -> dict[str, str]:
    """The environment of a toy command line child: it finds the tiny model through TOY_MODEL_DIR; wide
    COLUMNS so rich never wraps the error and summary lines the tests read."""
    return {**os.environ, "TOY_MODEL_DIR": toy_model_dir, "COLUMNS": "400"}


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module's tests (speed comparisons and bit-exact routes), restored after."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
