"""Test helpers for strategy authors: build a `Problem`, `Rollout`s and a `Group` by hand to test a plan.

    from sdbench.testing import make_group, make_strategy

    group = make_group([True, False, True])          # rollouts "y0", "y1", "y2"; y0 and y2 correct
    plans = MyDemo(weight=0.5).plan(group)           # or make_strategy("grpo").plan(group)
    assert plans[1].teachers[0].demos in {("y0",), ("y2",)}

Rollout i's text is `y{i}` unless `texts` are given; a correct rollout's functional class is its
text unless `classes` are given, a wrong one has none (as tasks grade them); reward = float(correct)
unless `rewards` are given. The group's rng is `random.Random(seed)`, so a plan is reproducible.
Nothing here imports torch: it is as cheap as `sdbench.strategy`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sdbench.strategy import STRATEGIES, Group, Rollout
from sdbench.task import Problem

__all__ = ["make_group", "make_problem", "make_rollouts", "make_strategy"]


def make_problem(prompt: str = "q", reference: str = "REF", id: str = "p", **data: Any) -> Problem:
    """A problem with this prompt and reference solution; keyword arguments go to `Problem.data`."""
    return Problem(id=id, prompt=prompt, reference=reference, data=data)


def make_rollouts(correct: Sequence[bool], *, texts: Sequence[str] | None = None,
                  classes: Sequence[str | None] | None = None,
                  rewards: Sequence[float] | None = None) -> tuple[Rollout, ...]:
    """One graded rollout per entry of `correct` (see the module docstring for the defaults)."""
    for what, values in (("texts", texts), ("classes", classes), ("rewards", rewards)):
        if values is not None and len(values) != len(correct):
            raise ValueError(f"{what} has {len(values)} entries for {len(correct)} rollouts")
    rollouts = []
    for i, ok in enumerate(correct):
        text = texts[i] if texts is not None else f"y{i}"
        cls = (classes[i] if classes is not None else text) if ok else None
        reward = rewards[i] if rewards is not None else float(ok)
        rollouts.append(Rollout(index=i, completion=text, correct=bool(ok), reward=reward, functional_class=cls))
    return tuple(rollouts)


def make_group(correct: Sequence[bool], seed: int = 0, *, texts: Sequence[str] | None = None,
               classes: Sequence[str | None] | None = None, rewards: Sequence[float] | None = None,
               problem: Problem | None = None) -> Group:
    """A group of rollouts graded `correct`, on `problem` (default `make_problem()`), rng seeded by `seed`."""
    return Group(problem=problem if problem is not None else make_problem(),
                 rollouts=make_rollouts(correct, texts=texts, classes=classes, rewards=rewards),
                 rng=random.Random(seed))


def make_strategy(name: str, **params: Any) -> Any:
    """The registered strategy `name` (built-in or `dist/name`), constructed with these hyperparameters."""
    return STRATEGIES.get(name)(**params)
