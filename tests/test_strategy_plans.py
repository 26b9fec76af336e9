"""Teacher plans of the built-in strategies on hand-built groups."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from sdbench.strategy import STRATEGIES, Group, Rollout, TeacherContext
from sdbench.task import Problem

PROBLEM = Problem(id="p", prompt="q", reference="REF")


def group(correct: list[bool], seed: int = 0) -> Group:
    rollouts = tuple(Rollout(index=i, completion=f"y{i}", correct=c, reward=float(c), functional_class=f"y{i}")
                     for i, c in enumerate(correct))
    return Group(problem=PROBLEM, rollouts=rollouts, rng=random.Random(seed))


def make(name: str, **params: object):
    return STRATEGIES.get(name)(**params)


def test_single_sampled_demo_uses_only_other_correct_rollouts() -> None:
    g = group([True, False, True, True, False])
    counts: Counter[tuple[int, str]] = Counter()
    for seed in range(200):
        plans = make("single_sampled_demo").plan(group([True, False, True, True, False], seed))
        assert len(plans) == 5
        for i, plan in enumerate(plans):
            assert len(plan.teachers) == 1 and plan.teachers[0].with_question
            (demo,) = plan.teachers[0].demos
            assert demo != f"y{i}", "a rollout must never be its own demonstration"
            assert demo in {"y0", "y2", "y3"}
            counts[(i, demo)] += 1
    # random selection really draws each other correct rollout
    assert {d for (i, d) in counts if i == 1} == {"y0", "y2", "y3"}
    assert {d for (i, d) in counts if i == 0} == {"y2", "y3"}
    assert g.correct[0].index == 0


def test_single_sampled_demo_without_other_correct_rollouts_gives_no_signal() -> None:
    plans = make("single_sampled_demo").plan(group([False, False, False]))
    assert all(not p.active for p in plans)
    plans = make("single_sampled_demo").plan(group([False, True, False]))
    assert plans[1].teachers == ()          # the only correct rollout has no other demo
    assert plans[0].teachers == (TeacherContext(demos=("y1",)),)
    assert plans[2].teachers == (TeacherContext(demos=("y1",)),)


def test_single_sampled_demo_first_selection_is_deterministic() -> None:
    plans = make("single_sampled_demo", selection="first").plan(group([False, True, True, True]))
    assert [p.teachers[0].demos[0] for p in plans] == ["y1", "y2", "y1", "y1"]


def test_grpo_advantages_are_group_normalized() -> None:
    plans = make("grpo").plan(group([True, False, False, False]))
    adv = [p.advantage for p in plans]
    assert adv[0] == pytest.approx(3 ** 0.5, rel=1e-3) and adv[1] == pytest.approx(-(3 ** -0.5), rel=1e-3)
    assert sum(adv) == pytest.approx(0.0, abs=1e-9)
    assert all(p.teachers == () for p in plans)
    assert all(not p.active for p in make("grpo").plan(group([True, True])))
    dr = make("grpo", scale_rewards=False).plan(group([True, False]))
    assert [p.advantage for p in dr] == [0.5, -0.5]


def test_base_never_trains() -> None:
    cls = STRATEGIES.get("base")
    assert cls.trains is False
    assert all(not p.active for p in cls().plan(group([True, True, False])))


def test_hyperparameters_are_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        make("single_sampled_demo", selection="best")
    with pytest.raises(ValidationError):
        make("grpo", nonsense=1)
