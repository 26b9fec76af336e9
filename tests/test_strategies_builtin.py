"""Plans of every built-in strategy on hand-built groups, equalities between strategies, and an
end-to-end smoke run of each through `run_suite` on the toy task.

    pytest tests/test_strategies_builtin.py
"""

from __future__ import annotations

import importlib
import math
from collections import Counter
from pathlib import Path

import pytest
from helpers import quiet_console, smoke_config

from sdbench.strategy import NO_SIGNAL, STRATEGIES, RolloutPlan, TeacherContext
from sdbench.testing import make_group, make_strategy

BUILTINS = ["antisd", "base", "diversity_weighted", "entropy_regularized", "ground_truth_demo", "grpo", "multi_demo",
            "opsd", "passk_grpo", "pmi_purified", "rft", "rlcsd", "sc_sdpo", "sd_rl_blend", "single_sampled_demo",
            "srpo", "ssd", "unlikeliness_grpo"]


def demos_of(plan: RolloutPlan) -> list[tuple[str, ...]]:
    return [t.demos for t in plan.teachers]


MIXED = [True, False, True, True, False, True]


def test_every_builtin_is_declared_documented_and_in_suite_all() -> None:
    from sdbench.config import resolve_config

    for name in BUILTINS:
        entry = STRATEGIES.entry(name)
        assert entry.distribution == "sdbench" and entry.entry_point is not None, name
        cls = entry.load()
        module_doc = importlib.import_module(cls.__module__).__doc__ or ""
        assert cls.__doc__ and ("arXiv" in module_doc or name == "base"), f"{name} cites no source"
        for field_name, field in cls.Params.model_fields.items():
            assert field.description, f"{name}.{field_name} has no description"
    from sdbench.strategy import builtin_strategies

    suite_all = resolve_config(overrides={"suite": "all"}, all_strategies=builtin_strategies)
    assert [s.name for s in suite_all.strategies] == sorted(BUILTINS)
    with pytest.raises(ValueError, match="all_strategies"):   # the config never asks the registry itself
        resolve_config(overrides={"suite": "all"})
    # the default suite is the paper's comparison
    assert [s.name for s in resolve_config().strategies] == ["base", "single_sampled_demo", "grpo"]


# --- multi_demo -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_multi_demo_with_one_demo_equals_single_sampled_demo(seed: int) -> None:
    single = make_strategy("single_sampled_demo").plan(make_group(MIXED, seed))
    assert make_strategy("multi_demo", num_demos=1).plan(make_group(MIXED, seed)) == single


def test_multi_demo_draws_distinct_other_correct_demos_with_equal_weights() -> None:
    seen: Counter[str] = Counter()
    for seed in range(100):
        plans = make_strategy("multi_demo", num_demos=2).plan(make_group(MIXED, seed))
        for i, plan in enumerate(plans):
            demos = [d for (d,) in demos_of(plan)]
            assert len(demos) == 2 and len(set(demos)) == 2, "two distinct demos"
            assert set(demos) <= {"y0", "y2", "y3", "y5"} - {f"y{i}"}
            assert plan.combine == "mixture" and [t.weight for t in plan.teachers] == [0.5, 0.5]
            seen.update(demos)
    assert set(seen) == {"y0", "y2", "y3", "y5"}


def test_multi_demo_uses_fewer_when_fewer_exist_and_none_without_others() -> None:
    plans = make_strategy("multi_demo", num_demos=4, combine="logmean").plan(make_group([True, True, False]))
    assert demos_of(plans[0]) == [("y1",)] and demos_of(plans[1]) == [("y0",)]
    assert sorted(demos_of(plans[2])) == [("y0",), ("y1",)] and plans[2].combine == "logmean"
    assert [t.weight for t in plans[0].teachers] == [1.0] and [t.weight for t in plans[2].teachers] == [0.5, 0.5]
    plans = make_strategy("multi_demo", num_demos=3).plan(make_group([False, True, False]))
    assert plans[1] == NO_SIGNAL and demos_of(plans[0]) == [("y1",)]


def test_multi_demo_concat_is_one_context_holding_the_demos() -> None:
    plans = make_strategy("multi_demo", num_demos=3, concat=True, selection="first").plan(make_group(MIXED))
    assert plans[1].teachers == (TeacherContext(demos=("y0", "y2", "y3")),)
    assert plans[0].teachers == (TeacherContext(demos=("y2", "y3", "y5")),)


# --- ground_truth_demo ---------------------------------------------------------------------------

def test_ground_truth_demo_gives_every_rollout_the_reference() -> None:
    for correct in ([False, False, False], [True, False, True]):
        plans = make_strategy("ground_truth_demo").plan(make_group(correct))
        assert [p.teachers for p in plans] == [(TeacherContext(demos=("REF",)),)] * 3


# --- diversity_weighted --------------------------------------------------------------------------

def test_diversity_weighted_draws_classes_uniformly_not_samples() -> None:
    # Rollout 0 is wrong; correct rollouts 1..4 are class A, rollout 5 is class B.
    correct = [False, True, True, True, True, True]
    classes = ["", "A", "A", "A", "A", "B"]
    counts: Counter[str] = Counter()
    single: Counter[str] = Counter()
    for seed in range(2000):
        (demo,) = make_strategy("diversity_weighted").plan(make_group(correct, seed, classes=classes))[0].teachers
        counts["B" if demo.demos == ("y5",) else "A"] += 1
        (s,) = make_strategy("single_sampled_demo").plan(make_group(correct, seed, classes=classes))[0].teachers
        single["B" if s.demos == ("y5",) else "A"] += 1
    assert abs(counts["B"] / 2000 - 0.5) < 0.05, counts          # uniform over the 2 classes
    assert abs(single["B"] / 2000 - 0.2) < 0.05, single          # vs 1 in 5 samples


def test_diversity_weighted_multiple_demos_come_from_distinct_classes() -> None:
    correct = [True] * 6
    classes = ["A", "A", "A", "B", "B", "C"]
    for seed in range(50):
        plans = make_strategy("diversity_weighted", num_demos=3).plan(make_group(correct, seed, classes=classes))
        for i, plan in enumerate(plans):
            picked = [int(d[0][1:]) for d in demos_of(plan)]
            assert i not in picked
            available = len({c for j, c in enumerate(classes) if j != i})    # rollout 5 is the only C
            assert len({classes[j] for j in picked}) == len(picked) == min(3, available)
            assert plan.distill_weight == 1.0 and plan.combine == "mixture"
    assert make_strategy("diversity_weighted").plan(make_group([True, False]))[0] == NO_SIGNAL


def test_dissimilarity_weighting_downweights_demos_that_repeat_the_rollout() -> None:
    texts = ["a b c", "a b c", "a b d", "x y z"]
    strategy = make_strategy("diversity_weighted", num_demos=3, dissimilarity_weighting=True, dissimilarity_floor=0.1)
    plans = strategy.plan(make_group([True] * 4, classes=["s", "s", "t", "u"], texts=texts))
    weights = {t.demos[0]: t.weight for t in plans[0].teachers}
    # rollout 0 is "a b c"; its demos: "a b c" (J = 1 -> the floor), "a b d" (J = 2/4), "x y z" (J = 0)
    assert weights == {"a b c": 0.1, "a b d": pytest.approx(0.5), "x y z": 1.0}
    assert plans[0].distill_weight == pytest.approx((0.1 + 0.5 + 1.0) / 3)
    (only,) = make_strategy("diversity_weighted", dissimilarity_weighting=True).plan(
        make_group([True, True], texts=["a b", "a b"]))[0].teachers
    assert only.weight == 0.1


# --- entropy_regularized -------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("correct", [MIXED + [False], [False, True, False, False]])
def test_entropy_regularized_at_zero_equals_single_sampled_demo(seed: int, correct: list[bool]) -> None:
    single = make_strategy("single_sampled_demo").plan(make_group(correct, seed))
    assert make_strategy("entropy_regularized", entropy_coef=0.0).plan(make_group(correct, seed)) == single
    bonus = make_strategy("entropy_regularized", entropy_coef=0.3).plan(make_group(correct, seed))
    assert [p.teachers for p in bonus] == [p.teachers for p in single]
    # the bonus rides on the distilled rollouts only (the lone correct rollout 1 has no demo, no signal)
    assert [p.entropy_coef for p in bonus] == [0.3 if p.teachers else 0.0 for p in single]
    assert [p.active for p in bonus] == [p.active for p in single]


# --- antisd ----------------------------------------------------------------------------------------

def test_antisd_ascends_jsd_under_a_gate_on_top_of_grpo() -> None:
    cls = STRATEGIES.get("antisd")
    assert cls.divergence == "jsd"
    g = [True, False, True, False]
    plans = make_strategy("antisd", coef=0.2, entropy_floor=0.3).plan(make_group(g, 3))
    single = make_strategy("single_sampled_demo").plan(make_group(g, 3))
    grpo = make_strategy("grpo").plan(make_group(g, 3))
    for p, s, r in zip(plans, single, grpo, strict=True):
        assert p.teachers == s.teachers and p.advantage == pytest.approx(r.advantage)
        assert p.distill_weight == -0.2 and p.teacher_entropy_gate == (0.3, math.inf)
    pure = make_strategy("antisd", rl_weight=0.0, entropy_ceiling=2.0).plan(make_group([True, True], 0))
    assert all(p.advantage is None and p.teacher_entropy_gate == (0.1, 2.0) for p in pure)
    lonely = make_strategy("antisd").plan(make_group([True, False], 0))
    assert lonely[0].teachers == () and lonely[0].advantage and lonely[0].advantage > 0


# --- pmi_purified ----------------------------------------------------------------------------------

def test_pmi_purified_subtracts_the_demo_only_teacher() -> None:
    plans = make_strategy("pmi_purified", alpha=0.7).plan(make_group(MIXED, 5))
    single = make_strategy("single_sampled_demo").plan(make_group(MIXED, 5))
    for p, s in zip(plans, single, strict=True):
        (c,) = s.teachers[0].demos
        assert p.combine == "logmean"
        assert p.teachers == (TeacherContext(demos=(c,), weight=1.0),
                              TeacherContext(demos=(c,), weight=-0.7, with_question=False),
                              TeacherContext(demos=(), weight=0.7))
    ref = make_strategy("pmi_purified", source="reference").plan(make_group([False, False]))
    assert all(p.teachers[0].demos == ("REF",) and p.teachers[1].demos == ("REF",) for p in ref)
    assert make_strategy("pmi_purified", alpha=0.0).plan(make_group(MIXED, 5)) == single
    assert make_strategy("pmi_purified").plan(make_group([False, True]))[1] == NO_SIGNAL


def test_pmi_purified_teacher_is_the_product_formula() -> None:
    import torch

    from sdbench.core.divergence import combine_teachers

    (plan, *_) = make_strategy("pmi_purified", alpha=0.5).plan(make_group([True, True], 0))
    gen = torch.Generator().manual_seed(0)
    logp = torch.log_softmax(torch.randn(3, 1, 7, generator=gen), dim=-1)   # (c,x), (c), (x)
    weights = torch.tensor([[t.weight] for t in plan.teachers])
    got = combine_teachers(logp, weights, plan.combine)[0]
    want = torch.log_softmax(logp[0, 0] + 0.5 * (logp[2, 0] - logp[1, 0]), dim=-1)
    assert torch.allclose(got, want, atol=1e-6)


# --- sd_rl_blend -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_sd_rl_blend_interpolates_grpo_and_sd(seed: int) -> None:
    g = [True, False, True, False, False]
    grpo = make_strategy("grpo").plan(make_group(g, seed))
    single = make_strategy("single_sampled_demo").plan(make_group(g, seed))
    assert make_strategy("sd_rl_blend", distillation_weight=0.0).plan(make_group(g, seed)) == grpo
    assert make_strategy("sd_rl_blend", distillation_weight=1.0).plan(make_group(g, seed)) == single
    blend = make_strategy("sd_rl_blend", distillation_weight=0.25).plan(make_group(g, seed))
    for p, r, s in zip(blend, grpo, single, strict=True):
        assert p.teachers == s.teachers and p.advantage == pytest.approx(0.75 * r.advantage)
        assert p.distill_weight == (0.25 if p.teachers else 1.0)
    same = make_strategy("sd_rl_blend").plan(make_group([True, True], seed))
    assert all(p.advantage is None and p.distill_weight == 0.5 and p.teachers for p in same)


# --- rft -------------------------------------------------------------------------------------------

def test_rft_is_sft_on_correct_rollouts() -> None:
    plans = make_strategy("rft").plan(make_group([True, False, True, True]))
    assert [p.advantage for p in plans] == [1.0, None, 1.0, 1.0]
    assert all(p.teachers == () for p in plans) and not plans[1].active
    dedup = make_strategy("rft", dedupe=True).plan(make_group([True, False, True, True], classes=["A", "", "A", "B"]))
    assert [p.advantage for p in dedup] == [1.0, None, None, 1.0]
    assert all(not p.active for p in make_strategy("rft").plan(make_group([False, False])))


# --- end to end ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_every_builtin_runs_end_to_end_on_the_toy_task(toy_task, tmp_path: Path) -> None:
    from sdbench.runs import run_suite
    from sdbench.runs.store import RunStore

    config = smoke_config(strategies=BUILTINS, out=str(tmp_path / "r"), training={"steps": 2},
                          evaluation={"problems": 4, "samples": 4})
    summary = run_suite(config, console=quiet_console())
    assert summary["failed"] == []
    records = {r.strategy.name: r for r in RunStore(tmp_path / "r").records()}
    assert set(records) == set(BUILTINS)
    for name, rec in records.items():
        assert rec.status == "ok", (name, rec.failure)
        assert rec.strategy.distribution == "sdbench"
        if name != "base":
            log = rec.train.log
            assert len(log) == 2 and all(math.isfinite(s["loss"]) for s in log)
    # the toy model solves some problems, so every demo-based strategy trained on some rollouts
    assert sum(s["trained_rollouts"] for s in records["single_sampled_demo"].train.log) > 0
