"""The demonstration-strategy API: a strategy sees one group and returns a plan.

A strategy never receives the trainer, the model or the optimizer. For each group (a problem, its
reference solution and the student's rollouts with verdicts) it answers, per rollout:
  * which demonstrations condition that rollout's teacher (`TeacherContext`s), with what weights,
  * how several teachers combine: `mixture`  p_T = sum_j w_j p_j          (probabilities)
                                  `logmean`  p_T ∝ exp(sum_j w_j log p_j)  (geometric mean)
  * which extra loss terms the core applies (all per token of the rollout y):
        distill_weight · g_t · D(p_student || p_teacher)   (negative ascends, as AntiSD does)
      − entropy_bonus  · H(p_student)
      − advantage      · log p_student(y_t)                (policy gradient: GRPO, RFT)
    where the gate g_t is 1 unless `teacher_entropy_gate = (lo, hi)` keeps only the tokens whose
    teacher entropy H(p_teacher) lies in [lo, hi].
  Weights are normalized to sum to 1. `logmean` weights may be negative: (1, -a, +a) on the
  contexts (c, x), (c alone), (x alone) gives p_T ∝ p(.|c,x) · (p(.|x) / p(.|c))^a, subtracting a
  demonstration-only teacher as PMI purification does. `mixture` weights must be >= 0.
  A strategy may fix the divergence its cells use with the class attribute `divergence`.

    from sdbench.strategy import StrategyBase, RolloutPlan, TeacherContext, register_strategy

    @register_strategy("my_demo")
    class MyDemo(StrategyBase):
        def plan(self, group):
            ...
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

from sdbench.registry import Registry
from sdbench.task import Problem

Combine = Literal["mixture", "logmean"]


@dataclass(frozen=True)
class Rollout:
    """One student rollout of the group, graded."""

    index: int
    completion: str
    correct: bool
    reward: float
    functional_class: str | None = None
    semantic_class: str | None = None


@dataclass(frozen=True)
class Group:
    """What a strategy sees: one problem, its reference, the rollouts, and an rng of its own."""

    problem: Problem
    rollouts: tuple[Rollout, ...]
    rng: random.Random

    @property
    def correct(self) -> list[Rollout]:
        return [r for r in self.rollouts if r.correct]


@dataclass(frozen=True)
class TeacherContext:
    """One teacher context: these demonstrations (in order), then the question unless demo-only."""

    demos: tuple[str, ...]
    weight: float = 1.0
    with_question: bool = True


@dataclass(frozen=True)
class RolloutPlan:
    """The loss terms for one rollout. The empty plan means: no training signal from it."""

    teachers: tuple[TeacherContext, ...] = ()
    combine: Combine = "mixture"
    distill_weight: float = 1.0
    entropy_bonus: float = 0.0
    advantage: float | None = None
    teacher_entropy_gate: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.combine == "mixture" and any(t.weight < 0 for t in self.teachers):
            raise ValueError("mixture weights must be >= 0 (negative weights need combine='logmean')")
        if self.teachers and sum(t.weight for t in self.teachers) <= 0:
            raise ValueError("teacher weights must sum to a positive number")

    @property
    def active(self) -> bool:
        return bool(self.teachers) or self.advantage is not None or self.entropy_bonus != 0.0


NO_SIGNAL = RolloutPlan()


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@runtime_checkable
class Strategy(Protocol):
    Params: ClassVar[type[BaseModel]]
    trains: ClassVar[bool]

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        ...


class StrategyBase:
    """Convenience base: hyperparameters as a pydantic `Params` model, validated on construction."""

    Params: ClassVar[type[BaseModel]] = NoParams
    trains: ClassVar[bool] = True
    divergence: ClassVar[str | None] = None     # None: the run's `training.divergence`

    def __init__(self, params: BaseModel | None = None, **overrides: object) -> None:
        self.params = params if params is not None else self.Params(**overrides)

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        raise NotImplementedError


STRATEGIES: Registry[type] = Registry(kind="strategy", group="sdbench.strategies")

StrategyT = TypeVar("StrategyT", bound=type)


def register_strategy(name: str) -> Callable[[StrategyT], StrategyT]:
    """Class decorator: make a strategy available to `sdbench run --strategies NAME`.

    Outside sdbench the name is namespaced by distribution: `mypkg/NAME`.
    """
    return STRATEGIES.decorator(name)  # type: ignore[return-value]
