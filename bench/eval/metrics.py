"""Per-problem values of every summary metric, from per-problem counts (numpy only, no torch).

    from sdbench.eval.metrics import problem_metrics
    problem_metrics(record.eval["final"]["test"].problems)["pass@1"]   # [problems]

Averaging a metric's per-problem values gives the metric; the aggregator bootstraps them over
seeds and problems. Kept apart from `sdbench.eval.evaluate` (which samples with torch) so that
aggregation, reports and the leaderboard import nothing heavier than numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from sdbench.eval.passk import area_under_curve, k_values, pass_curve


class Counts(Protocol):
    n: int
    c: int
    distinct_correct: int
    semantic_classes: int
    entropy: float | None


def problem_metrics(problems: Sequence[Counts]) -> dict[str, np.ndarray]:
    """pass@k for k = 1, 2, 4, ... <= n, pass@auc, pass@gain, distinct_correct, semantic_classes,
    entropy: one value per problem."""
    n = np.array([p.n for p in problems])
    c = np.array([p.c for p in problems])
    ks = k_values(int(n.min()))
    curve = pass_curve(n, c, ks)
    metrics = {f"pass@{k}": curve[i] for i, k in enumerate(ks)}
    metrics["pass@auc"] = area_under_curve(curve, ks)
    metrics["pass@gain"] = curve[-1] - curve[0]
    metrics["distinct_correct"] = np.array([p.distinct_correct for p in problems], dtype=np.float64)
    metrics["semantic_classes"] = np.array([p.semantic_classes for p in problems], dtype=np.float64)
    metrics["entropy"] = np.array([np.nan if p.entropy is None else p.entropy for p in problems], dtype=np.float64)
    return metrics
