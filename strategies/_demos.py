"""Shared demonstration selection for the built-in strategies (not a strategy; nothing registers here).

    from sdbench.strategies._demos import other_correct, draw_demos

Every demo-based strategy answers the same first question — which of the group's correct rollouts
may condition rollout i's teacher — so the answer lives here once: the *other* correct rollouts
C_i = {y_j : j != i, y_j correct}, in index order. A rollout is never its own demonstration.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal, TypeVar

from sdbench.strategy import Group, Rollout

Selection = Literal["random", "first"]
T = TypeVar("T")


def other_correct(group: Group, rollout: Rollout) -> list[Rollout]:
    """C_i: the group's correct rollouts other than `rollout`, in index order."""
    return [r for r in group.correct if r.index != rollout.index]


def draw_demos(candidates: Sequence[T], m: int, rng: random.Random, selection: Selection = "random") -> list[T]:
    """Up to m distinct items of `candidates` (fewer if fewer exist), without replacement.

    `random` draws without replacement by m successive `rng.choice` calls, so m = 1 consumes the
    rng exactly as `single_sampled_demo` does (same draws, same demos); `first` takes the m
    lowest-index candidates and draws nothing.
    """
    pool = list(candidates)
    if selection == "first":
        return pool[:m]
    picked: list[T] = []
    while pool and len(picked) < m:
        choice = rng.choice(pool)
        picked.append(choice)
        pool.remove(choice)
    return picked


def class_of(rollout: Rollout) -> str:
    """The rollout's functional class; its text when the task gives none (identical text, same class)."""
    return rollout.functional_class if rollout.functional_class is not None else rollout.completion


def token_jaccard(a: str, b: str) -> float:
    """|A ∩ B| / |A ∪ B| over the whitespace-separated token sets of two texts (1.0 for two empty texts)."""
    ta, tb = set(a.split()), set(b.split())
    if not ta and not tb:
        return 1.0
    return len(ta & tb) / len(ta | tb)
