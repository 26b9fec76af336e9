"""Coverage of the seed-aware intervals (sdbench.eval.intervals), checked by simulation; plus exact small cases.

    pytest tests/test_intervals.py -q          # ~10 s on one core

The simulation (a crossed random-effects model with a paired design; true values known):

    arm A, seed s, problem p:  y = mu_A + a_s + b_p + c_Ap + e_sp
    arm B, seed t, problem p:  y = mu_B + a'_t + b_p + c_Bp + e'_tp

a, a' ~ N(0, sd_seed^2) (a training run's offset, independent between arms), b_p ~ N(0, sd_problem^2) (the
problem's difficulty, shared by both arms: the pairing), c ~ N(0, sd_inter^2) (arm x problem), e ~ N(0,
sd_noise^2) (seed x problem: sampling noise of a per-problem value). The target is the population mean over
training runs and problems: E[y_A] = mu_A for a row, mu_A - mu_B for a paired delta (every random term has
mean 0), so those are the true values the intervals must cover. The variance of the sample mean of one arm
with S seeds and P problems is sd_seed^2/S + (sd_problem^2 + sd_inter^2)/P + sd_noise^2/(S P); of the delta
(b_p cancels) 2 sd_seed^2/S + 2 sd_inter^2/P + 2 sd_noise^2/(S P) — in the seed-dominated case below nearly
all of it is the seed term, which a problems-only interval leaves out.

Tolerance: with R repetitions and true coverage 0.95, the observed coverage is Binomial(R, 0.95)/R with SD
sqrt(0.95 * 0.05 / R); R = 2000 gives 0.0049, so the band 0.93..0.97 is +-4.1 SD: a correct method falls
outside it with probability 4e-5 per check (under 1e-3 over the checks of this file). The bootstrap
seed is fixed, so the test is deterministic. Measured (this file's seeds): rows 0.954-0.962, deltas 0.951-0.969
at 3 and 5 seeds; the problems-only delta 0.14-0.17 when seeds dominate.
"""

from __future__ import annotations

import numpy as np
import pytest

from sdbench.eval.intervals import hierarchical_draws, seed_aware_interval, t_interval, variance_parts

R = 2000           # repetitions (see the tolerance above)
P = 64             # problems, like a val split
BAND = (0.93, 0.97)
MU_A, MU_B = 0.5, 0.4
SEED_DOMINATED = {"seed": 0.1, "problem": 0.1, "inter": 0.03, "noise": 0.05}
PROBLEM_DOMINATED = {"seed": 0.003, "problem": 0.25, "inter": 0.08, "noise": 0.05}


def _simulate(sd: dict[str, float], seeds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """[R, seeds, P] values of arms A and B, sharing each repetition's problems."""
    b = rng.normal(0, sd["problem"], (R, 1, P))

    def arm(mu: float) -> np.ndarray:
        return (mu + rng.normal(0, sd["seed"], (R, seeds, 1)) + b + rng.normal(0, sd["inter"], (R, 1, P))
                + rng.normal(0, sd["noise"], (R, seeds, P)))

    return arm(MU_A), arm(MU_B)


def _new(arms: list[np.ndarray], signs: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    est, seed_vars, problem_var = variance_parts(arms, signs)
    return t_interval(est, seed_vars, [a.shape[-2] - 1 for a in arms], problem_var, P - 1)


def _old_delta(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The former delta CI: seeds averaged first, then a percentile bootstrap over problems only."""
    diff = a.mean(axis=-2) - b.mean(axis=-2)                      # [R, P]
    draws = hierarchical_draws([diff[:, None, :]], samples=1000)   # one "seed": problems resampled only
    return np.percentile(draws, 2.5, axis=-1), np.percentile(draws, 97.5, axis=-1)


def _coverage(low: np.ndarray, high: np.ndarray, truth: float) -> float:
    return float(np.mean((low <= truth) & (truth <= high)))


@pytest.mark.parametrize("seeds", [3, 5])
@pytest.mark.parametrize("case", [SEED_DOMINATED, PROBLEM_DOMINATED], ids=["seed-dominated", "problem-dominated"])
def test_nominal_95_covers_93_to_97_for_a_row_and_a_paired_delta(seeds: int, case: dict[str, float]) -> None:
    a, b = _simulate(case, seeds, np.random.default_rng(seeds * 10 + (case is SEED_DOMINATED)))
    row = _coverage(*_new([a], (1.0,)), MU_A)
    delta = _coverage(*_new([a, b], (1.0, -1.0)), MU_A - MU_B)
    assert BAND[0] <= row <= BAND[1], f"row coverage {row:.3f}"
    assert BAND[0] <= delta <= BAND[1], f"delta coverage {delta:.3f}"


def test_problems_only_delta_undercovers_when_seeds_dominate() -> None:
    # the delta's variance is ~ 2 * 0.1^2 / 3 (seeds) vs ~ 2 * 0.03^2 / 64 (problems): the old interval is
    # about 10x too narrow, so it covers far below 90%
    a, b = _simulate(SEED_DOMINATED, 3, np.random.default_rng(7))
    old = _coverage(*_old_delta(a, b), MU_A - MU_B)
    assert old < 0.90, f"old delta coverage {old:.3f}"


def test_percentile_bootstrap_at_three_seeds_undercovers() -> None:
    # why the seed part uses a t quantile: the percentile interval of rliable's bootstrap at 3 seeds spans at
    # most the range of the 3 seed means, which misses the mean with probability 1/4 (seed-dominated case)
    a, _ = _simulate(SEED_DOMINATED, 3, np.random.default_rng(11))
    draws = hierarchical_draws([a], samples=1000)
    old = _coverage(np.percentile(draws, 2.5, axis=-1), np.percentile(draws, 97.5, axis=-1), MU_A)
    assert old < 0.85, f"percentile coverage {old:.3f}"


def test_one_arm_exact_cases() -> None:
    # equal values: no variance, a zero-width interval at the value; its seeds explain none of it
    iv = seed_aware_interval([np.full((3, 4), 0.25)])
    assert (iv.mean, iv.low, iv.high, iv.seed_sd, iv.seed_share) == (0.25, 0.25, 0.25, 0.0, 0.0)
    # problems identical, seeds differ: the interval is exactly the t-interval of the 3 seed means (df 2)
    seeds = np.array([1.0, 2.0, 4.0])
    iv = seed_aware_interval([np.repeat(seeds[:, None], 5, axis=1)])
    half = 4.302653 * seeds.std(ddof=1) / np.sqrt(3)
    assert iv.mean == pytest.approx(7 / 3)
    assert iv.high - iv.mean == pytest.approx(half, rel=1e-6)
    assert iv.seed_sd == pytest.approx(seeds.std(ddof=1)) and iv.seed_share == 1.0


def test_one_seed_falls_back_to_problems_and_says_so() -> None:
    iv = seed_aware_interval([np.array([[0.0, 1.0, 0.0, 1.0]])])
    assert iv.seed_sd is None and iv.seed_share is None
    assert iv.low < 0.5 < iv.high


def test_paired_delta_shares_problems() -> None:
    # problems differ a lot, seeds not at all, and A = B + 0.1 on every problem: the problems' part cancels in
    # the paired difference (resampled jointly), so the interval has no width
    a = np.repeat(np.random.default_rng(0).random((1, 10)), 3, axis=0)
    iv = seed_aware_interval([a + 0.1, a], (1, -1))
    assert iv.mean == pytest.approx(0.1) and iv.high - iv.low == pytest.approx(0.0, abs=1e-12)
