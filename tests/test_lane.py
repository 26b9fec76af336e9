"""The evaluation lane (sdbench.eval.lane): the same record with or without it, a fallback when the
helper cannot do a job, pending val points through a checkpoint, and when a run opens one.

Run: pytest tests/test_lane.py
"""

from __future__ import annotations

import pytest
import torch
from helpers import smoke_config

from sdbench.config import resolve_config
from sdbench.eval import along
from sdbench.eval import lane as lane_mod
from sdbench.runs.cell import plan_cells, run_cell


def _strip(record: dict) -> dict:
    record = dict(record)
    record.pop("wall_s")
    timing = record.pop("timing")
    record["train"] = {k: v for k, v in record["train"].items() if k != "wall_s"}
    return record | {"lane_worked": timing["lane_s"] > 0}


def _cell(task: str, **training) -> tuple:
    # smoke settings with val at steps 0, 2, 4, 6 and both checkpoints evaluated
    config = smoke_config(tasks=[task], strategies=["single_sampled_demo"], training={"steps": 6, **training})
    return plan_cells(config)[0], config


def _run(cell, config, idle: int) -> tuple[dict, list[dict]]:
    along.STEP0_CACHE.clear()        # each run computes its own step 0 (in the lane when there is one)
    record, samples = run_cell(cell, config, idle_cores=idle)
    assert record.status == "ok", record.failure
    return _strip(record.model_dump(mode="json", exclude_none=True)), samples


def test_a_cell_records_the_same_with_its_evaluations_in_a_lane() -> None:
    cell, config = _cell("graph_paths")
    (alone, alone_samples), (laned, laned_samples) = _run(cell, config, 0), _run(cell, config, 1)
    assert laned.pop("lane_worked") and not alone.pop("lane_worked")
    assert laned == alone                          # trajectory, best-val step, test / ood at both checkpoints
    assert laned_samples == alone_samples          # every evaluation sample, in the same order
    assert [p["step"] for p in laned["trajectory"]] == [0, 2, 4, 6]


def test_a_lane_that_cannot_load_the_task_falls_back_to_the_cell(toy_task) -> None:
    # toy_pick is registered in this process only: the spawned helper cannot load it
    cell, config = _cell("toy_pick")
    (alone, alone_samples), (laned, laned_samples) = _run(cell, config, 0), _run(cell, config, 1)
    assert not laned.pop("lane_worked") and not alone.pop("lane_worked")
    assert (laned, laned_samples) == (alone, alone_samples)


def _hook(model, tok, task, evaluation, lane=None) -> along.ValEvaluator:
    return along.ValEvaluator(model, tok, task, evaluation, seed=0, backend="hf", cache_key=("lane-test",), lane=lane)


def test_val_points_pending_in_a_lane_survive_a_checkpoint() -> None:
    from sdbench.core.model import load_model
    from sdbench.task import load_task

    task = load_task("graph_paths")
    evaluation = resolve_config({"profile": "smoke"}).evaluation
    model, tok = load_model(task.base_model())
    states = {}
    for step in (0, 2):
        states[step] = {k: v.clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(step)))

    along.STEP0_CACHE.clear()
    direct = _hook(*load_model(task.base_model()), task, evaluation)
    for step, state in states.items():
        model.load_state_dict(state)
        direct(step, model)

    along.STEP0_CACHE.clear()
    lane = lane_mod.EvalLane(task="graph_paths", data_path=None, model_path=task.base_model(),
                             evaluation=evaluation, seed=0)
    try:
        laned = _hook(*load_model(task.base_model()), task, evaluation, lane=lane)
        for step, state in states.items():
            model.load_state_dict(state)
            laned(step, model)
        saved = laned.state_dict()                 # (a checkpoint now): points still in the lane as weights
        assert len(saved["trajectory"]) + len(saved["pending"]) == 2
    finally:
        lane.close()
    saved["pending"] = saved["pending"] or {2: states[2]}   # had both finished already, pretend one had not
    saved["trajectory"] = [p for p in saved["trajectory"] if p["step"] not in saved["pending"]]
    along.STEP0_CACHE.clear()
    resumed = _hook(*load_model(task.base_model()), task, evaluation)   # resumed without a lane
    resumed.load_state_dict(saved)
    assert [p.model_dump() for p in resumed.trajectory] == [p.model_dump() for p in direct.trajectory]
    assert resumed.best_step == direct.best_step


@pytest.mark.parametrize(("cores", "workers", "cells", "idle"), [
    (2, 2, 1, 1),      # a lone cell: the second core is idle
    (2, 2, 27, 0),     # the default suite keeps both cores busy
    (2, 1, 27, 1),     # one worker leaves one core
    (16, 2, 27, 7),    # each of two workers gets 7 idle cores' share
])
def test_a_run_offers_lanes_only_where_cores_are_idle(monkeypatch: pytest.MonkeyPatch, cores: int, workers: int,
                                                     cells: int, idle: int) -> None:
    from sdbench.runs import execute

    monkeypatch.setattr(lane_mod.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert execute.idle_share(workers, cells, threads=1) == idle
