"""Where the mechanism's data comes from (issue 29): class histograms at evaluation, the trainer's demo log,
and `demo_source` (base_pool never draws a demo from the student's current rollouts)."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import smoke_training

from sdbench.core.model import load_model
from sdbench.core.trainer import demo_log, train
from sdbench.eval.evaluate import evaluate_split
from sdbench.strategy import STRATEGIES, DemoSourceParams, class_id
from sdbench.testing import make_group, make_rollouts


def test_histograms_sum_to_the_counts_and_keep_their_ids_across_evaluations(toy_task) -> None:
    model, tok = load_model(toy_task.base_model())
    problems = toy_task.problems("val", 4)
    first = evaluate_split(model, tok, toy_task, problems, n=8, seed=1).problems
    again = evaluate_split(model, tok, toy_task, problems, n=8, seed=2).problems
    letter_ids = {class_id(letter): letter for letter in "abcdefghij"}
    for a, b, problem in zip(first, again, problems, strict=True):
        for p in (a, b):
            assert sum(p.classes.values()) == 8 and sum(p.correct_classes.values()) == p.c
            assert len(p.correct_classes) == p.distinct_correct
            # a correct sample's class is its letter: the id is the letter's hash, whatever the seed
            assert {letter_ids[k] for k in p.correct_classes} <= set(problem.data["letters"])


def test_demo_log_counts_a_fixed_plan() -> None:
    # selection "first": rollout 0 is taught by 1 ("b"), rollouts 1, 2, 3 by 0 ("a")
    group = make_group([True, True, False, True], texts=["a", "b", "x", "a"])
    plans = STRATEGIES.get("single_sampled_demo")(selection="first").plan(group)
    a, b, x = class_id("a"), class_id("b"), class_id("x")
    assert demo_log(group, list(plans)) == {"demos": dict(sorted({a: 3, b: 1}.items())),
                                            "conditioned": dict(sorted({a: 2, b: 1, x: 1}.items())),
                                            "correct": dict(sorted({a: 2, b: 1}.items())), "same": 1}
    none_correct = make_group([False, False])
    assert demo_log(none_correct, list(STRATEGIES.get("single_sampled_demo")().plan(none_correct))) is None


# Every built-in that teaches with a sampled correct demo takes `demo_source` (sdbench.strategy.DemoSourceParams)
DEMO_SOURCE = ["diversity_weighted", "entropy_regularized", "multi_demo", "sc_sdpo", "sd_rl_blend",
               "single_sampled_demo", "srpo"]


def test_the_demo_drawing_builtins_take_demo_source() -> None:
    STRATEGIES.discover()
    takes = sorted(n for n in STRATEGIES.names() if issubclass(STRATEGIES.get(n).Params, DemoSourceParams))
    assert takes == DEMO_SOURCE


@pytest.mark.parametrize("name", DEMO_SOURCE)
def test_base_pool_never_draws_the_students_rollouts(name: str) -> None:
    student = [f"s{i}" for i in range(6)]
    pool = make_rollouts([True, False, True, True], texts=["p0", "p1", "p2", "p3"])
    strategy = STRATEGIES.get(name)(demo_source="base_pool")
    for seed in range(20):
        # half the student's rollouts correct: sc_sdpo's weight sqrt(p(1-p)) is 0 for an all-correct group
        group = dataclasses.replace(make_group([True, False] * 3, seed, texts=student), pool=pool)
        drawn = {d for plan in strategy.plan(group) for t in plan.teachers for d in t.demos}
        assert drawn and drawn <= {"p0", "p2", "p3"}          # correct pool samples only, never s0..s5
    with pytest.raises(ValueError, match="base_pool"):
        strategy.plan(make_group([True] * 3))                   # no pool: a clear error, never a silent fallback
    reference = STRATEGIES.get(name)(demo_source="reference").plan(make_group([True, False]))
    assert {d for plan in reference for t in plan.teachers for d in t.demos} == {"REF"}


def test_trainer_logs_demos_and_fills_the_base_pool(toy_task) -> None:
    cfg = smoke_training(steps=2, prompts_per_step=3, rollouts_per_prompt=4)
    model, tok = load_model(toy_task.base_model())
    result = train(model, tok, toy_task, STRATEGIES.get("single_sampled_demo")(demo_source="base_pool"), cfg, seed=0)
    logged = [entry.demos for entry in result.log if entry.demos]
    assert logged, "the toy base model answers correctly often enough for a demo in 2 steps"
    for step in logged:
        for d in step.values():
            assert sum(d["conditioned"].values()) <= 4 and sum(d["demos"].values()) == sum(d["conditioned"].values())
    grpo = train(load_model(toy_task.base_model())[0], tok, toy_task, STRATEGIES.get("grpo")(), cfg, seed=0)
    assert all(entry.demos is None for entry in grpo.log)        # no demo drawn: nothing logged
