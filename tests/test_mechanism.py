"""The mechanism meter (sdbench.eval.mechanism) on the analytic toy of issue 29, by hand, and by simulation.

The toy: per problem a categorical policy over K = 4 correct classes of unequal mass (0.55, 0.25, 0.13, 0.07,
permuted per problem) and one incorrect class (mass 1/2). The teacher given a correct demo c copies its class
with probability alpha and otherwise follows the policy: pi(y|c) = alpha·[y = c] + (1 - alpha)·pi(y), so
    pmi(y; c) = log(alpha·[y = c] / pi(y) + 1 - alpha)
    g(y) = E_{c ~ pi(.|correct)}[pmi(y; c)] = q(y) log(alpha / pi(y) + 1 - alpha) + (1 - q(y)) log(1 - alpha),
q(y) = pi(y) / P(correct). dg/dpi = (1/P)·(log u + 1/u - 1) with u = (alpha + (1 - alpha) pi)/((1 - alpha) pi)
>= 1, and log u >= 1 - 1/u, so g increases with pi(y): the SD fixed-point update pi' ∝ pi·exp(eta·g) gives
    log(pi'(k) / pi(k)) = eta·g(k) - log Z,
a slope (with problem fixed effects, log Z in the intercept) of eta·Cov_within(g, log pi) / Var_within(log pi),
positive by Chebyshev's sum inequality (two increasing functions of pi). The KL-regularized RL optimum
pi' ∝ pi·exp(r/beta) multiplies every correct class by the same exp(1/beta): log ratios are constant within a
problem and the slope is exactly 0.
"""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import numpy as np
import pytest

from sdbench.eval.mechanism import (
    demo_correlation,
    dominant,
    effective_classes,
    exact_slope,
    measure_arm,
    problem_sums,
    slope_difference,
)

K, P, N, SEEDS, ALPHA, ETA, BETA = 4, 64, 16, 3, 0.5, 1.0, 0.5
BASE = np.array([0.55, 0.25, 0.13, 0.07])


def toy_policies(seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.r_[0.5 * BASE[rng.permutation(K)], 0.5] for _ in range(P)]


def pmi_tilt(pi: np.ndarray) -> np.ndarray:
    q = pi[:K] / pi[:K].sum()
    g = np.full(K + 1, math.log(1 - ALPHA))
    g[:K] = q * np.log(ALPHA / pi[:K] + 1 - ALPHA) + (1 - q) * math.log(1 - ALPHA)
    return g


def sd_update(pi: np.ndarray, steps: int = 1) -> np.ndarray:
    for _ in range(steps):
        pi = pi * np.exp(ETA * pmi_tilt(pi))
        pi = pi / pi.sum()
    return pi


def rl_update(pi: np.ndarray) -> np.ndarray:
    out = pi * np.exp(np.r_[np.ones(K), 0.0] / BETA)
    return out / out.sum()


def test_exact_updates_give_the_derived_slopes() -> None:
    pis = toy_policies()
    x = [np.log(p[:K]) for p in pis]
    g = [ETA * pmi_tilt(p)[:K] for p in pis]
    derived = (sum(float((xi - xi.mean()) @ (gi - gi.mean())) for xi, gi in zip(x, g, strict=True))
               / sum(float((xi - xi.mean()) @ (xi - xi.mean())) for xi in x))
    sd = exact_slope([p[:K] for p in pis], [sd_update(p)[:K] for p in pis])
    assert sd == pytest.approx(derived, rel=1e-12) and sd > 0
    assert abs(exact_slope([p[:K] for p in pis], [rl_update(p)[:K] for p in pis])) < 1e-12
    # iterating the SD update keeps amplifying: the slope after 3 steps exceeds the slope after 1
    assert exact_slope([p[:K] for p in pis], [sd_update(p, 3)[:K] for p in pis]) > sd


def _cells(initial: list[np.ndarray], later: list[np.ndarray], rng: np.random.Generator) -> list[NS]:
    cells = []
    for seed in range(SEEDS):
        points = []
        for step, policies in ((0, initial), (150, later)):
            counts = [rng.multinomial(N, p) for p in policies]
            points.append(NS(step=step, problems=[NS(id=f"p{i}", n=N, correct_classes={f"k{k}": int(c[k])
                                                                                          for k in range(K) if c[k]})
                                                  for i, c in enumerate(counts)]))
        cells.append(NS(seed=seed, trajectory=points, train=None))
    return cells


def test_finite_sample_meter_separates_sd_from_rl_and_the_unchanged_policy() -> None:
    """At a quick run's sizes (64 val problems x 16 samples, 3 seeds): SD after 3 fixed-point steps (dominant
    share 0.55 -> ~0.80) has its CI above 0, RL's and the unchanged policy's cover 0, in >= 93% of repetitions.
    R = 40 repetitions: >= 38 must pass (0.93 x 40 = 37.2). The null's mean slope over repetitions is within
    4 standard errors of 0 (unbiased under ratio preservation).
    Between arms (`slope_difference`, independent arms on the same problems): RL minus the unchanged policy (both
    keep the ratios: true difference exactly 0) covers 0 in >= 38 of 40. SD minus RL (true difference = SD's
    slope, > 0) lies above 0 in >= 26 of 40. Derivation: over these 40 repetitions the difference's estimate has
    mean 0.414 and sd 0.0998 (z = 4.15), and the bootstrap's mean half-width is 1.67 x 1.96 sd (resampling both
    crossed factors, seeds and problems, counts the seed-by-problem noise twice: conservative, Owen 2007), so
    its power is about Phi(4.15 - 1.96 x 1.67) = 0.81; the 1% quantile of Binomial(40, 0.81) is 26. Measured: 34."""
    initial = toy_policies()
    arms = {"sd": [sd_update(p, 3) for p in initial], "rl": [rl_update(p) for p in initial], "same": initial}
    rng = np.random.default_rng(7)
    reps = 40
    hits = dict.fromkeys([*arms, "rl-same", "sd-rl"], 0)
    null_means = []
    for r in range(reps):
        sums = {}
        for name, later in arms.items():
            out = measure_arm(_cells(initial, later, rng), draws=200, splits=4, seed=r, keep_sums=True)
            slope, sums[name] = out["slope"], out["sums"]
            hits[name] += slope["ci_low"] > 0 if name == "sd" else slope["ci_low"] <= 0 <= slope["ci_high"]
            if name == "same":
                null_means.append(slope["mean"])
        null_diff = slope_difference(sums["rl"], sums["same"], draws=200, seed=r)
        hits["rl-same"] += null_diff["ci_low"] <= 0 <= null_diff["ci_high"]
        hits["sd-rl"] += slope_difference(sums["sd"], sums["rl"], draws=200, seed=r)["ci_low"] > 0
    power = hits.pop("sd-rl")
    assert all(h >= 38 for h in hits.values()) and power >= 26, str({**hits, "sd-rl": power})
    se = np.std(null_means, ddof=1) / math.sqrt(reps)
    assert abs(np.mean(null_means)) < 4 * se + 1e-9


def test_slope_difference_by_hand() -> None:
    """Two arms' sums tables (seeds x problems): the difference is the ratio of pooled sums of each, over the
    problems both measured; an arm against itself is exactly 0; too few shared problems give None."""
    a = {"problems": ["p0", "p1", "p2", "p3", "p4", "p5"],
         "num": np.array([[1.0, 2, 0, 1, 1, 1], [0.0, 1, 1, 1, 1, 0]]),
         "den": np.array([[2.0, 2, 1, 2, 2, 2], [1.0, 2, 2, 2, 2, 1]])}
    b = {"problems": ["p5", "p4", "p3", "p2", "p1", "p0", "q"], "num": np.array([[0.5, 0, 0, 0, 0, 0, 9.0]]),
         "den": np.array([[1.0, 1, 1, 1, 1, 1, 1.0]])}
    # a: (1+2+0+1+1+1 + 0+1+1+1+1+0) / (2+2+1+2+2+2 + 1+2+2+2+2+1) = 10/21; b over p0..p5 (q left out): 0.5/6
    out = slope_difference(a, b, draws=300)
    assert out["mean"] == pytest.approx(10 / 21 - 0.5 / 6)
    assert out["ci_low"] <= out["mean"] <= out["ci_high"]
    same = slope_difference(a, a, draws=300)
    assert same["mean"] == 0.0
    short = {"problems": ["p0", "p1"], "num": np.ones((1, 2)), "den": np.ones((1, 2))}
    assert slope_difference(a, short) is None and slope_difference(a, None) is None


def test_hand_computed_values() -> None:
    assert effective_classes({"a": 2, "b": 2}) == pytest.approx(2.0)
    # H(0.75, 0.25) = 0.562335 nats -> exp = 1.754765
    assert effective_classes({"a": 3, "b": 1}) == pytest.approx(1.754765, abs=1e-6)
    assert effective_classes({}) == 0.0
    assert dominant([{"a": 2, "b": 3}, {"a": 2}]) == "a" and dominant([{"b": 1, "a": 1}]) == "a"
    # two problems; shares (0.5, 0.3, 0.2) -> (0.6, 0.25, 0.15) and (0.8, 0.2) -> (0.9, 0.1): by hand,
    # x1 = log(.5,.3,.2) demeaned, y1 = log(.6/.5, .25/.3, .15/.2); slope = sum dx·dy / sum dx²
    x1, y1 = np.log([0.5, 0.3, 0.2]), np.log([0.6 / 0.5, 0.25 / 0.3, 0.15 / 0.2])
    x2, y2 = np.log([0.8, 0.2]), np.log([0.9 / 0.8, 0.1 / 0.2])
    dx1, dx2 = x1 - x1.mean(), x2 - x2.mean()
    by_hand = (dx1 @ (y1 - y1.mean()) + dx2 @ (y2 - y2.mean())) / (dx1 @ dx1 + dx2 @ dx2)
    assert by_hand == pytest.approx(0.565605, abs=1e-6)
    assert exact_slope([[0.5, 0.3, 0.2], [0.8, 0.2]], [[0.6, 0.25, 0.15], [0.9, 0.1]]) == pytest.approx(by_hand)


def test_minimum_count_rule_leaves_out_problems_without_two_base_classes() -> None:
    rng = np.random.default_rng(0)
    assert problem_sums(16, {"a": 8}, {"a": 8}, rng, 4) == (0.0, 0.0)          # one class: no slope
    assert problem_sums(16, {"a": 1, "b": 1}, {}, rng, 4) == (0.0, 0.0)       # nothing correct later: m = 0


def test_arm_measure_reads_records_with_and_without_histograms() -> None:
    cells = _cells(toy_policies(), toy_policies(), np.random.default_rng(3))
    out = measure_arm(cells, draws=50, splits=1)
    assert [r["step"] for r in out["steps"]] == [0, 150] and out["seeds"] == [0, 1, 2] and out["problems"] == P
    assert out["steps"][0]["slope"] is None and out["null_slope"] is not None
    old = [NS(seed=0, trajectory=[NS(step=0, problems=[NS(id="p", n=4, correct_classes=None)])], train=None)]
    assert measure_arm(old) is None                         # schema 2: not measured


def test_demo_correlation_counts() -> None:
    step = {"demos": {"p": {"demos": {"a": 3}, "conditioned": {"a": 2, "b": 1}, "correct": {"a": 3, "b": 1},
                            "same": 2}}}
    last = {"demos": {"p": {"demos": {"a": 1}, "conditioned": {"b": 1}, "correct": {"a": 4}, "same": 0}}}
    out = demo_correlation([[step, last]])
    assert out["same_class_rate"] == pytest.approx(2 / 4) and out["problems"] == 1 and out["partial_r"] is None
    assert demo_correlation([[{"demos": None}]]) is None


def test_the_summary_section_sets_each_arm_against_the_papers_baseline() -> None:
    """`mechanism_report.section`: every arm beside single_sampled_demo on its task gets `slope_vs`, its slope minus
    the baseline's (the same problems: the difference of the two reported slopes, to rounding); the baseline and
    an arm on a task without the baseline get none; no table of sums reaches the JSON."""
    from sdbench.runs.mechanism_report import section

    initial, rng = toy_policies(), np.random.default_rng(11)
    sd = _cells(initial, [sd_update(p, 3) for p in initial], rng)
    rl = _cells(initial, [rl_update(p) for p in initial], rng)
    arms = {(a["strategy"], a["task"]): a for a in section([("single_sampled_demo", "t", sd), ("grpo", "t", rl),
                                                            ("grpo", "u", rl)])["arms"]}
    vs = arms[("grpo", "t")]["slope_vs"]
    assert vs["strategy"] == "single_sampled_demo" and vs["ci_low"] < vs["ci_high"] < 0
    assert vs["mean"] == pytest.approx(arms[("grpo", "t")]["slope"]["mean"]
                                       - arms[("single_sampled_demo", "t")]["slope"]["mean"], abs=2e-6)
    assert "slope_vs" not in arms[("single_sampled_demo", "t")] and "slope_vs" not in arms[("grpo", "u")]
    assert all("sums" not in a for a in arms.values())
