"""Teacher plans of the built-in strategies on hand-built groups, and the public strategy-author surface
(`sdbench.strategy` helpers, `sdbench.testing`, the exports of `sdbench`).

    pytest tests/test_strategy.py
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from sdbench.strategy import STRATEGIES, TeacherContext
from sdbench.testing import make_group, make_strategy


def test_single_sampled_demo_uses_only_other_correct_rollouts() -> None:
    g = make_group([True, False, True, True, False])
    counts: Counter[tuple[int, str]] = Counter()
    for seed in range(200):
        plans = make_strategy("single_sampled_demo").plan(make_group([True, False, True, True, False], seed))
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
    plans = make_strategy("single_sampled_demo").plan(make_group([False, False, False]))
    assert all(not p.active for p in plans)
    plans = make_strategy("single_sampled_demo").plan(make_group([False, True, False]))
    assert plans[1].teachers == ()          # the only correct rollout has no other demo
    assert plans[0].teachers == (TeacherContext(demos=("y1",)),)
    assert plans[2].teachers == (TeacherContext(demos=("y1",)),)


def test_single_sampled_demo_first_selection_is_deterministic() -> None:
    plans = make_strategy("single_sampled_demo", selection="first").plan(make_group([False, True, True, True]))
    assert [p.teachers[0].demos[0] for p in plans] == ["y1", "y2", "y1", "y1"]


def test_grpo_advantages_are_group_normalized() -> None:
    plans = make_strategy("grpo").plan(make_group([True, False, False, False]))
    adv = [p.advantage for p in plans]
    assert adv[0] == pytest.approx(3 ** 0.5, rel=1e-3) and adv[1] == pytest.approx(-(3 ** -0.5), rel=1e-3)
    assert sum(adv) == pytest.approx(0.0, abs=1e-9)
    assert all(p.teachers == () for p in plans)
    assert all(not p.active for p in make_strategy("grpo").plan(make_group([True, True])))
    dr = make_strategy("grpo", scale_rewards=False).plan(make_group([True, False]))
    assert [p.advantage for p in dr] == [0.5, -0.5]


def test_base_never_trains() -> None:
    cls = STRATEGIES.get("base")
    assert cls.trains is False
    assert all(not p.active for p in cls().plan(make_group([True, True, False])))


def test_hyperparameters_are_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        make_strategy("single_sampled_demo", selection="best")
    with pytest.raises(ValidationError):
        make_strategy("grpo", nonsense=1)


def test_the_plugin_surface_is_public_and_has_one_home() -> None:
    import importlib
    import warnings

    import sdbench
    import sdbench.strategy as api

    for name in ("StrategyBase", "StrategyParams", "NO_SIGNAL", "other_correct", "draw_demos", "group_advantages",
                 "single_demo_plans", "make_group", "demo_candidates", "DemoSourceParams"):
        assert name in sdbench.__all__ and getattr(sdbench, name) is not None, name
    # the built-ins use the public helpers themselves, not copies
    for module, helper in (("grpo", "group_advantages"), ("antisd", "single_demo_plans"),
                           ("multi_demo", "draw_demos"), ("diversity_weighted", "demo_candidates"),
                           ("single_sampled_demo", "single_demo_plans")):
        assert getattr(importlib.import_module(f"sdbench.strategies.{module}"), helper) is getattr(api, helper)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert api.NoParams is api.StrategyParams         # the deprecated name still works, loudly
    assert caught and caught[0].category is DeprecationWarning
    assert api.group_advantages([1.0, 0.0], scale=False) == [0.5, -0.5] and api.group_advantages([1.0, 1.0]) is None


def test_make_group_builds_what_a_plan_sees() -> None:
    g = make_group([True, False], 3, texts=["a", "b"], classes=["A", "B"], rewards=[0.5, 0.0])
    assert [(r.index, r.completion, r.correct, r.reward, r.functional_class) for r in g.rollouts] == [
        (0, "a", True, 0.5, "A"), (1, "b", False, 0.0, None)]      # a wrong rollout has no class
    assert g.problem.reference == "REF" and g.rng.random() == random.Random(3).random()
    with pytest.raises(ValueError, match="texts has 1 entries for 2 rollouts"):
        make_group([True, False], texts=["a"])
