"""Seed-aware confidence intervals for means over training seeds x problems (numpy / scipy only, no torch).

    from sdbench.eval.intervals import seed_aware_interval
    iv = seed_aware_interval([values])                      # one arm: values [seeds, problems]
    iv = seed_aware_interval([a, b], signs=(1, -1))         # paired delta: a, b on the same problems
    iv.mean, iv.low, iv.high, iv.seed_sd, iv.seed_share

The estimate is sum_i sign_i * mean(arm_i). Each arm is a [seeds, problems] array; the arms share their
problems (columns aligned), not their seeds (independent training runs). Two sources of variance:

- training seeds: each arm's seeds are an independent sample of training runs. Resampling them with
  replacement within each arm (problems held fixed) gives the seed part of the variance.
- problems: the evaluated problems are a sample of the task's problems, shared by every arm. Resampling
  them jointly across the arms (seeds held fixed) gives the problem part, and keeps the pairing: a
  problem that is hard for one arm is hard for the other, so a paired delta's problem part is small.

This is the hierarchical / stratified bootstrap of Agarwal et al. 2021, "Deep reinforcement learning at
the edge of the statistical precipice" (arXiv:2108.13264; library `rliable`, rliable/library.py
`StratifiedBootstrap`: runs resampled with replacement within each task), with the problems of a paired
comparison resampled jointly; `hierarchical_draws` gives that joint resampling distribution (vectorised:
a resample is a multinomial weight vector, a draw one matrix product, no loop over draws).

The interval itself is not the percentile of those draws. The percentile interval of a 3-seed bootstrap
cannot cover 95%: its 10 distinct seed resamples span at most the range of the 3 seed means, and the
population mean lies outside the range of 3 draws with probability 2 * (1/2)^3 = 25% (tests/test_intervals.py
measures 83% coverage). So the two variance parts are taken in closed form — the expectations of the
seed-only and problem-only bootstrap variances, corrected for their plug-in bias (factor m/(m-1)), which also
removes Monte-Carlo noise — and each gets its own Student t quantile:

    seed part of arm i:  V_i = max(s2(seed means_i) - MSE_i / P, 0) / S_i        (df S_i - 1)
    problem part:        V_P = s2(per-problem sum_i sign_i * mean over seeds_i) / P  (df P - 1)
    half-width = sqrt(t(df_seeds)^2 * sum_i V_i + t(P - 1)^2 * V_P)

MSE_i is arm i's seed x problem residual mean square (two-way ANOVA without replication): a seed mean's
variance holds sampling noise / P as well, which the problem part already counts. df_seeds is the
Welch-Satterthwaite df of the seed parts. Each part with its own quantile is exact when one part dominates
and conservative in between (the simulation: 95-96% when seeds or problems dominate, up to 97.8% when they
are balanced at 3 seeds; the single Satterthwaite t over all parts was liberal instead, 92% for a 3-seed
row at 85% seed share). With one seed per arm the seed part cannot be estimated: the interval is the
problem part alone and `seed_sd` / `seed_share` are None (say so wherever it is shown). Arrays may carry
leading batch axes ([..., seeds, problems]), as the coverage simulation uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

SAMPLES = 2000
SEED = 20261128
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    seed_sd: float | None      # SD of the seed means (one arm) / of the seed part (delta); None at one seed
    seed_share: float | None   # share of the estimate's variance that comes from seeds (0..1)


def _weights(rng: np.random.Generator, samples: int, m: int) -> np.ndarray:
    """[samples, m] resampling weights (counts / m) of m items drawn with replacement."""
    return rng.multinomial(m, np.full(m, 1.0 / m), size=samples) / m


def variance_parts(arms: Sequence[np.ndarray], signs: Sequence[float],
                   ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(estimate, seed variance part per arm (NaN at one seed), problem variance part); arms[i]: [..., S_i, P]."""
    estimate = sum(s * a.mean(axis=(-2, -1)) for s, a in zip(signs, arms, strict=True))
    p = arms[0].shape[-1]
    seed_vars = []
    for arm in arms:
        m = arm.shape[-2]
        if m < 2:
            seed_vars.append(np.full(np.shape(estimate), np.nan))
            continue
        seed_means, problem_means = arm.mean(axis=-1), arm.mean(axis=-2)
        if p > 1:
            resid = arm - seed_means[..., None] - problem_means[..., None, :] + arm.mean(axis=(-2, -1))[..., None, None]
            mse = (resid**2).sum(axis=(-2, -1)) / ((m - 1) * (p - 1))
        else:
            mse = 0.0
        seed_vars.append(np.maximum(seed_means.var(axis=-1, ddof=1) - mse / p, 0.0) / m)
    paired = sum(s * a.mean(axis=-2) for s, a in zip(signs, arms, strict=True))   # [..., P]
    problem_var = paired.var(axis=-1, ddof=1) / p if p > 1 else np.zeros(np.shape(estimate))
    return np.asarray(estimate, dtype=np.float64), seed_vars, np.asarray(problem_var, dtype=np.float64)


def t_interval(estimate: np.ndarray, seed_vars: Sequence[np.ndarray], seed_dfs: Sequence[int],
               problem_var: np.ndarray, problem_df: int, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """(low, high): each part with its own t quantile, in quadrature (see the module docstring); NaN parts left out."""
    q = 0.5 + level / 2
    v_seed = sum(np.nan_to_num(v) for v in seed_vars)
    denom = sum(np.nan_to_num(v) ** 2 / max(d, 1) for v, d in zip(seed_vars, seed_dfs, strict=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denom > 0, v_seed**2 / np.where(denom > 0, denom, 1.0), np.inf)
    t_seed = stats.t.ppf(q, df)
    t_problem = stats.t.ppf(q, max(problem_df, 1)) if problem_df >= 1 else 0.0
    half = np.sqrt(t_seed**2 * v_seed + t_problem**2 * problem_var)
    return estimate - half, estimate + half


def seed_aware_interval(arms: Sequence[np.ndarray], signs: Sequence[float] | None = None, *,
                        level: float = LEVEL) -> Interval:
    """Mean and seed-aware `level` CI of sum_i signs_i * mean(arms_i); arms_i: [seeds_i, problems]."""
    arms = [np.asarray(a, dtype=np.float64) for a in arms]
    signs = tuple(signs) if signs is not None else (1.0,) * len(arms)
    estimate, seed_vars, problem_var = variance_parts(arms, signs)
    low, high = t_interval(estimate, seed_vars, [a.shape[0] - 1 for a in arms], problem_var, arms[0].shape[1] - 1,
                           level)
    estimable = all(np.isfinite(v) for v in seed_vars)
    seed_var = float(sum(seed_vars)) if estimable else None
    if len(arms) == 1 and estimable:
        seed_sd: float | None = float(arms[0].mean(axis=1).std(ddof=1))
    else:
        # a delta: the SD of (arm seed mean - other arm's seed mean) for one seed each
        seed_sd = float(np.sqrt(sum(np.var(a.mean(axis=1), ddof=1) for a in arms))) if estimable else None
    total = (seed_var or 0.0) + float(problem_var)
    share = (seed_var / total if total > 0 else 0.0) if seed_var is not None else None
    return Interval(float(estimate), float(low), float(high), seed_sd, share)


def hierarchical_draws(arms: Sequence[np.ndarray], signs: Sequence[float] | None = None, *,
                       samples: int = SAMPLES, seed: int = SEED) -> np.ndarray:
    """[..., samples] joint bootstrap draws of sum_i signs_i * mean(arms_i): seeds resampled within each arm,
    problems jointly across arms (rliable's stratified bootstrap with paired problems)."""
    rng = np.random.default_rng(seed)
    arms = [np.asarray(a, dtype=np.float64) for a in arms]
    signs = tuple(signs) if signs is not None else (1.0,) * len(arms)
    prob_w = _weights(rng, samples, arms[0].shape[-1])
    out = 0.0
    for s, arm in zip(signs, arms, strict=True):
        seed_w = _weights(rng, samples, arm.shape[-2])
        out = out + s * np.einsum("bs,...sp,bp->...b", seed_w, arm, prob_w)
    return np.asarray(out)
