"""The numbers both the aggregator and the matched comparisons compute: a Stat of [seeds, problems] values, and
where each seed's val trajectory reaches a level.

    stat(values)                                   # values [seeds, problems] -> Stat (mean, seed-aware 95% CI)
    paired_stat([a, b], (1.0, -1.0))              # the paired difference a - b on the same problems
    seeds, values = reach(points, "kl_from_base", 0.1)

Used by `sdbench.runs.aggregate` (rows, deltas, the KL frontier) and `sdbench.runs.compare` (matched
KL, matched val pass@1), so neither imports the other. CIs: `sdbench.eval.intervals.seed_aware_interval`.
numpy / scipy only (no torch).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from sdbench.eval.intervals import seed_aware_interval
from sdbench.results.record import Stat

# the trained arms reach the largest budgets late in a 300-step run (full profile), the smallest ones early
KL_BUDGETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)   # nats/token


def _round(x: float) -> float:
    return round(float(x), 6)


def stat(values: np.ndarray) -> Stat:
    """Mean and seed-aware 95% CI of values [seeds, problems]."""
    return paired_stat([values], (1.0,))


def paired_stat(arms: Sequence[np.ndarray], signs: Sequence[float]) -> Stat:
    """sum_i signs_i * mean(arms_i) with its seed-aware CI; arms_i [seeds_i, problems] on the same problems."""
    iv = seed_aware_interval(arms, signs)
    return Stat(mean=_round(iv.mean), ci_low=_round(iv.low), ci_high=_round(iv.high),
                seed_sd=None if iv.seed_sd is None else _round(iv.seed_sd),
                seed_share=None if iv.seed_share is None else _round(iv.seed_share))


def reach(points: dict[int, dict[str, np.ndarray]], key: str, level: float,
          ) -> tuple[list[int], dict[str, np.ndarray]]:
    """(seeds that reach `level` of `key`, metric -> [those seeds, problems] interpolated there).

    Seed s's trajectory is the sequence of (its mean `key` over problems, values) over its evaluation points in
    step order; it reaches the level at the first point whose mean is >= level, and its value there is the
    linear interpolation between that point and the one before it (exactly the point's value when the mean
    equals the level). The same weight interpolates every problem's value, so the CI resamples seeds and
    problems like every other number. A seed that never reaches the level is not counted.
    """
    steps = sorted(points)
    curve = np.stack([points[t][key].mean(axis=1) for t in steps], axis=1)   # [seeds, points]
    seeds, rows = [], defaultdict(list)
    for s in range(curve.shape[0]):
        reached = np.nonzero(curve[s] >= level)[0]
        if reached.size == 0:
            continue
        j = int(reached[0])
        if j == 0 or curve[s, j] == level:
            lo, w = j, 0.0
        else:
            lo, w = j - 1, (level - curve[s, j - 1]) / (curve[s, j] - curve[s, j - 1])
        seeds.append(s)
        for name, per_step in ((n, [points[t][n] for t in steps]) for n in points[steps[0]]):
            a, b = per_step[lo][s], per_step[min(lo + 1, len(steps) - 1)][s]
            rows[name].append(a + w * (b - a))
    return seeds, {name: np.stack(vals) for name, vals in rows.items()}
