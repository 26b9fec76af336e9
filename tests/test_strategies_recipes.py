"""Plans of the 2026 recipes (srpo, rlcsd, ssd, passk_grpo, unlikeliness_grpo, sc_sdpo, opsd) and grpo's
kl_coef on hand-built groups from `sdbench.testing.make_group`, against hand-computed values.

    pytest tests/test_strategies_recipes.py
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import statistics

import pytest

from sdbench.strategy import NO_SIGNAL, HintContrast, Rollout, RolloutPlan, TeacherContext
from sdbench.testing import make_group, make_strategy

MIXED = [True, False, True, True, False, True]


# --- grpo kl_coef ---------------------------------------------------------------------------------

@pytest.mark.parametrize("correct", [MIXED, [True, True], [False, True, False, False]])
def test_grpo_kl_coef_zero_is_todays_grpo_exactly(correct: list[bool]) -> None:
    today = make_strategy("grpo").plan(make_group(correct))
    assert make_strategy("grpo", kl_coef=0.0).plan(make_group(correct)) == today
    # today's grpo: RolloutPlan(advantage=A_i) or NO_SIGNAL, with no KL field set
    assert all(p.kl_coef == 0.0 for p in today) and not make_strategy("grpo").needs_reference


def test_grpo_kl_coef_sets_beta_on_every_rollout_and_asks_for_the_base_weights() -> None:
    strategy = make_strategy("grpo", kl_coef=0.04)
    assert strategy.needs_reference
    plans = strategy.plan(make_group([True, False]))
    assert [p.advantage for p in plans] == pytest.approx([0.5 / (0.5 + 1e-4), -0.5 / (0.5 + 1e-4)])
    assert all(p.kl_coef == 0.04 for p in plans)
    # equal rewards: no policy gradient, but the KL term still acts (it is part of every token's loss)
    equal = strategy.plan(make_group([True, True]))
    assert all(p.advantage is None and p.kl_coef == 0.04 and p.active for p in equal)


# --- srpo -----------------------------------------------------------------------------------------

def test_srpo_routes_correct_rollouts_to_grpo_and_failed_ones_to_distillation() -> None:
    plans = make_strategy("srpo").plan(make_group(MIXED, seed=3))
    single = make_strategy("single_sampled_demo").plan(make_group(MIXED, seed=3))
    rewards = [float(c) for c in MIXED]
    mean, std = statistics.fmean(rewards), statistics.pstdev(rewards)   # 4/6, sqrt(2/9)
    for i, (ok, plan) in enumerate(zip(MIXED, plans, strict=True)):
        if ok:   # GRPO: the group-normalized reward, no teacher
            assert plan.teachers == () and plan.advantage == pytest.approx((1 - mean) / (std + 1e-4))
        else:    # SD: one demo from the correct rollouts, the same draw as single_sampled_demo, no advantage
            assert plan.advantage is None and plan.teachers == single[i].teachers
            assert plan.teachers[0].demos[0] in {"y0", "y2", "y3", "y5"}
    assert make_strategy("srpo").divergence == "jsd"


def test_srpo_without_a_mixed_group_has_no_signal() -> None:
    assert make_strategy("srpo").plan(make_group([True, True, True])) == [NO_SIGNAL] * 3
    assert make_strategy("srpo").plan(make_group([False, False])) == [NO_SIGNAL] * 2


# --- rlcsd ----------------------------------------------------------------------------------------

def test_rlcsd_draws_a_correct_hint_and_k_wrong_hints_never_the_rollout_itself() -> None:
    correct = [True, False, True, False, False, True, False]
    for seed in range(30):
        plans = make_strategy("rlcsd", num_wrong=2).plan(make_group(correct, seed=seed))
        for i, plan in enumerate(plans):
            c = plan.contrast
            assert c is not None and plan.advantage is not None
            assert c.positive.demos[0] in {f"y{j}" for j in (0, 2, 5)} - {f"y{i}"}
            wrong = [n.demos[0] for n in c.negatives]
            assert len(wrong) == 2 and len(set(wrong)) == 2
            assert set(wrong) <= {f"y{j}" for j in (1, 3, 4, 6)} - {f"y{i}"}
            assert (c.scale, c.tau, c.clip, c.threshold) == (0.5, 0.02, (-2.0, 2.0), 0.02)


def test_rlcsd_without_both_kinds_of_hint_keeps_the_grpo_advantage() -> None:
    # y0 is the only correct rollout: it has no other correct hint; y1 is the only wrong one of y0's view
    plans = make_strategy("rlcsd").plan(make_group([True, False]))
    assert plans[0].contrast is None and plans[1].contrast is None
    assert plans[0].advantage == pytest.approx(0.5 / (0.5 + 1e-4))
    assert make_strategy("rlcsd").plan(make_group([True, True])) == [NO_SIGNAL] * 2


def modulated(a: float, e: list[float], c: HintContrast) -> list[float]:
    """RLCSD's token advantage, written out from compute_policy_loss_rlcsd (scalar, by hand)."""
    out = []
    for et in e:
        r = min(max(c.scale * math.tanh(et / c.tau), c.clip[0]), c.clip[1])
        r = r if abs(r) > c.threshold else 0.0
        m = a + r
        out.append(max(m, 0.0) if a > 0 else min(m, 0.0) if a < 0 else 0.0)
    return out


def test_rlcsd_clamp_keeps_the_verifiers_sign() -> None:
    import torch

    from sdbench.core.objective import LossItem
    from sdbench.core.policy_terms import token_advantages

    c = HintContrast(positive=TeacherContext(("p",)), negatives=(TeacherContext(("n",)),))
    # e_t = lp(positive) − lp(negative); a large contrast against the sign would flip A without the clamp
    e = [-1.0, -0.01, 0.0, 0.005, 0.3, 2.0]
    for a in (0.3, -0.3, 0.0):   # |A| < scale: a full contrast against A would flip it
        expected = modulated(a, e, c)
        if a > 0:
            assert min(expected) == 0.0 and max(expected) == pytest.approx(a + 0.5)   # tanh saturates at scale
        if a < 0:
            assert max(expected) == 0.0 and min(expected) == pytest.approx(a - 0.5)
        got = _modulate_with_fixed_scores(torch, LossItem, token_advantages, a, e, c)
        assert got == pytest.approx(expected, abs=1e-6)
        assert all((g >= 0) if a > 0 else (g <= 0) if a < 0 else g == 0 for g in got)


def _modulate_with_fixed_scores(torch, LossItem, token_advantages, a, e, c) -> list[float]:
    """token_advantages with the teacher's scores replaced by fixed log-probs: positive e_t, negative 0."""
    import sdbench.core.policy_terms as terms

    n = len(e)
    fixed = torch.tensor([*e, *([0.0] * n)], dtype=torch.float64)
    original = terms.score_sampled
    terms.score_sampled = lambda *args, **kw: fixed
    try:
        item = LossItem([1], list(range(n)), RolloutPlan(advantage=a, contrast=c), (), ([1], [2]))
        out = token_advantages([item], [n], torch.full((n,), a, dtype=torch.float64), None, pad_id=0,
                               temperature=1.0, impl="materialized")
    finally:
        terms.score_sampled = original
    return out.tolist()


# --- ssd ------------------------------------------------------------------------------------------

def test_ssd_trains_on_every_own_sample_with_cross_entropy_and_no_verifier() -> None:
    plans = make_strategy("ssd").plan(make_group([True, False, False], texts=["a b", "c", "  "]))
    assert plans[0] == plans[1] == RolloutPlan(sft_weight=1.0) and plans[2] == NO_SIGNAL   # empty: filtered
    assert plans[0].advantage is None and plans[0].teachers == ()
    kept = make_strategy("ssd", filter_empty=False).plan(make_group([False], texts=[""]))
    assert kept == [RolloutPlan(sft_weight=1.0)]


# --- passk_grpo -----------------------------------------------------------------------------------

def brute_force_passk(correct: list[bool], k: int) -> list[float]:
    """The paper's definition, enumerated: each k-subset's reward is its best verdict; it is normalized over
    all C(n, k) subsets (population std); a rollout's advantage is the mean over the subsets holding it."""
    subsets = list(itertools.combinations(range(len(correct)), k))
    reward = {s: float(any(correct[i] for i in s)) for s in subsets}
    mean = statistics.fmean(reward.values())
    std = statistics.pstdev(reward.values())
    return [statistics.fmean((reward[s] - mean) / (std + 1e-6) for s in subsets if i in s)
            for i in range(len(correct))]


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_passk_advantage_equals_the_paper_formula_by_enumeration(n: int) -> None:
    from sdbench.strategies.passk_grpo import passk_advantages

    for k in range(1, n + 1):
        for correct in itertools.product([False, True], repeat=n):
            got = passk_advantages(list(correct), k)
            want = brute_force_passk(list(correct), k)
            assert got == pytest.approx(want, abs=1e-9), (correct, k)


def test_passk_grpo_plans_and_k_one_is_grpo() -> None:
    plans = make_strategy("passk_grpo", k=2).plan(make_group([True, False, False, False]))
    # n=4, 3 failed, k=2: R̄ = 1 − C(3,2)/C(4,2) = 1/2, σ = 1/2; A_pos = 1, A_neg = (1/2 − C(2,1)/C(3,1)) / (1/2) = −1/3
    assert [p.advantage for p in plans] == pytest.approx([1.0, -1 / 3, -1 / 3, -1 / 3], abs=1e-5)
    grpo = make_strategy("grpo", eps=1e-6).plan(make_group(MIXED))
    assert [p.advantage for p in make_strategy("passk_grpo", k=1).plan(make_group(MIXED))] == pytest.approx(
        [p.advantage for p in grpo])
    # fewer failures than k: every k-subset passes, no signal
    assert make_strategy("passk_grpo", k=3).plan(make_group([True, True, False, False])) == [NO_SIGNAL] * 4
    with pytest.raises(ValueError, match="k <= rollouts"):
        make_strategy("passk_grpo", k=5).plan(make_group([True, False]))


# --- unlikeliness_grpo ----------------------------------------------------------------------------

def with_logprobs(correct: list[bool], mean_logprobs: list[float], lengths: list[int]):
    group = make_group(correct)
    rollouts = tuple(dataclasses.replace(r, logprob=m * n, length=n)
                     for r, m, n in zip(group.rollouts, mean_logprobs, lengths, strict=True))
    return dataclasses.replace(group, rollouts=rollouts)


def test_unlikeliness_reward_ranks_correct_rollouts_by_likelihood() -> None:
    from sdbench.strategies.unlikeliness_grpo import unlikeliness_rewards

    # mean per-token log-likelihoods (not sums: y1 is long but per token the likeliest)
    group = with_logprobs([True, True, False, True], [-0.5, -0.1, -3.0, -2.0], [2, 20, 4, 3])
    # ranks, least likely first: y2 (−3.0) 0, y3 (−2.0) 1, y0 (−0.5) 2, y1 (−0.1) 3; G = 4, β = 0.25
    assert unlikeliness_rewards(group.rollouts, 0.25) == pytest.approx([1 - 0.25 * 2 / 4, 1 - 0.25 * 3 / 4, 0.0,
                                                                        1 - 0.25 * 1 / 4])
    plans = make_strategy("unlikeliness_grpo").plan(group)
    adv = [p.advantage for p in plans]
    assert adv[3] > adv[0] > adv[1] > adv[2], "the rarer a correct rollout, the larger its advantage"
    # every rollout correct: still a signal, toward the unlikely ones
    allc = make_strategy("unlikeliness_grpo").plan(with_logprobs([True] * 3, [-1.0, -0.2, -3.0], [1, 1, 1]))
    assert allc[2].advantage > 0 > allc[1].advantage
    # rank_penalty 0 is GRPO
    assert make_strategy("unlikeliness_grpo", rank_penalty=0.0).plan(group) == make_strategy("grpo").plan(group)
    assert make_strategy("unlikeliness_grpo").needs_logprob is True


def test_unlikeliness_without_logprobs_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="needs_logprob"):
        make_strategy("unlikeliness_grpo").plan(make_group([True, False]))


# --- sc_sdpo --------------------------------------------------------------------------------------

def test_sc_sdpo_weight_at_zero_half_and_one() -> None:
    from sdbench.strategies.sc_sdpo import pass_rate_weight

    assert pass_rate_weight(0.0) == 0.0 and pass_rate_weight(1.0) == 0.0 and pass_rate_weight(0.5) == 0.5
    assert pass_rate_weight(0.25) == pytest.approx(math.sqrt(3) / 4)
    # p = 1/2: the plans of single_sampled_demo (same draws) with distill_weight 1/2
    group = [True, False, True, False]
    single = make_strategy("single_sampled_demo").plan(make_group(group, seed=5))
    plans = make_strategy("sc_sdpo").plan(make_group(group, seed=5))
    assert [p.teachers for p in plans] == [p.teachers for p in single]
    assert [p.distill_weight for p in plans if p.teachers] == [0.5] * 4
    # p = 1 and p = 0: no signal
    assert make_strategy("sc_sdpo").plan(make_group([True, True])) == [NO_SIGNAL] * 2
    assert make_strategy("sc_sdpo").plan(make_group([False, False])) == [NO_SIGNAL] * 2


# --- opsd -----------------------------------------------------------------------------------------

def test_opsd_is_the_reference_teacher_with_a_per_token_clip() -> None:
    plans = make_strategy("opsd").plan(make_group([True, False, False]))
    assert all(p.teachers == (TeacherContext(demos=("REF",)),) and p.divergence_clip == 0.05 for p in plans)
    assert make_strategy("opsd").divergence == "jsd"
    plain = make_strategy("opsd", token_clip=None).plan(make_group([False]))
    assert plain == make_strategy("ground_truth_demo").plan(make_group([False]))


def test_plan_validation_of_the_new_terms() -> None:
    with pytest.raises(ValueError, match="advantage"):
        RolloutPlan(contrast=HintContrast(TeacherContext(("a",)), (TeacherContext(("b",)),)))
    with pytest.raises(ValueError, match="negative"):
        HintContrast(TeacherContext(("a",)), ())
    with pytest.raises(ValueError, match="divergence_clip"):
        RolloutPlan(divergence_clip=0.0)
    assert RolloutPlan(kl_coef=0.1).active and RolloutPlan(sft_weight=1.0).active
    assert Rollout(0, "y", True, 1.0).logprob is None
    random.Random(0)   # (make_group's rng type; nothing to check)
