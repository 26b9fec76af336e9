"""The demonstration-strategy API and plugin surface: a strategy sees one group and returns a plan.

A strategy never receives the trainer, the model or the optimizer. For each group (a problem, its
reference solution and the student's rollouts with verdicts) it answers, per rollout:
  * which demonstrations condition that rollout's teacher (`TeacherContext`s), with what weights,
  * how several teachers combine: `mixture`  p_T = sum_j w_j p_j          (probabilities)
                                  `logmean`  p_T ∝ exp(sum_j w_j log p_j)  (geometric mean)
  * which extra loss terms the core applies (all per token of the rollout y):
        distill_weight · g_t · min(D(p_student || p_teacher), divergence_clip)   (negative ascends, as AntiSD)
      − entropy_coef  · H(p_student)
      − a_t            · log p_student(y_t)                (policy gradient: GRPO, RFT)
      + kl_coef        · k3(p_base(y_t) / p_student(y_t))  (KL to the frozen base weights, arXiv 2402.03300)
      − sft_weight     · log p_student^{T=1}(y_t)          (cross-entropy on the own sample, untempered: SSD)
    where the gate g_t is 1 unless `teacher_entropy_gate = (lo, hi)` keeps only the tokens whose
    teacher entropy H(p_teacher) lies in [lo, hi] and, with `teacher_entropy_weight` = β, is multiplied by
    exp(−β·H(p_teacher)) normalized to mean 1 over the batch's tokens that have such a weight (SRPO's
    entropy-aware dynamic weighting); `divergence_clip` None means no clip; a_t is the
    rollout's `advantage`, or with a `HintContrast` the advantage modulated per token by the contrast
    of two teacher contexts (RLCSD, see `HintContrast`); k3(r) = r − log r − 1 ≥ 0.
  Weights are normalized to sum to 1. `logmean` weights may be negative: (1, -a, +a) on the
  contexts (c, x), (c alone), (x alone) gives p_T ∝ p(.|c,x) · (p(.|x) / p(.|c))^a, subtracting a
  demonstration-only teacher as PMI purification does. `mixture` weights must be >= 0.

Everything a strategy author needs is importable from here, and this module is its one home:
the types above, `StrategyBase` / `StrategyParams`, `register_strategy`, and the helpers the
built-ins share — `other_correct` (C_i, the demo candidates of rollout i), `draw_demos`,
`other_wrong` (the failed rollouts other than it: wrong hints), `class_of`, `group_advantages` (GRPO),
`success_rate` (the group's p) and `single_demo_plans` (the paper's one-demo plan).
Two optional strategy attributes ask the core for more: `needs_logprob` (fill `Rollout.logprob`
with the completion's log-likelihood under the current policy, for likelihood-shaped rewards) and
`needs_reference` (keep a frozen copy of the base weights, for plans with `kl_coef`).
`sdbench.testing.make_group` builds a `Group` by hand to test a plan.

    from sdbench.strategy import NO_SIGNAL, RolloutPlan, StrategyBase, TeacherContext, other_correct, register_strategy

    @register_strategy("my_demo")
    class MyDemo(StrategyBase):
        def plan(self, group):
            ...
"""

from __future__ import annotations

import hashlib
import random
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from sdbench.registry import Registry
from sdbench.task import Problem

Combine = Literal["mixture", "logmean"]
Selection = Literal["random", "first"]
# Where demos come from (issue 29): the student's own group (the paper's setting), a fixed pool of the base
# model's correct samples of the problem (the teacher still conditioned, but the demos no longer follow the
# student: separates compounding from conditioning), or the task's reference solution.
DemoSource = Literal["student", "base_pool", "reference"]
T = TypeVar("T")


@dataclass(frozen=True)
class Rollout:
    """One student rollout of the group, graded."""

    index: int
    completion: str
    correct: bool
    reward: float
    functional_class: str | None = None
    semantic_class: str | None = None
    # Filled by the core only for strategies with `needs_logprob`: sum over the completion's tokens
    # (EOS included when it ended) of log pi(y_t | x, y_<t) under the current policy at the sampling
    # temperature, and that token count; None otherwise.
    logprob: float | None = None
    length: int | None = None


@dataclass(frozen=True)
class Group:
    """What a strategy sees: one problem, its reference, the rollouts, and an rng of its own."""

    problem: Problem
    rollouts: tuple[Rollout, ...]
    rng: random.Random
    # the base model's samples of this problem (graded), drawn once from the base weights; the trainer fills
    # it only for a strategy whose params say `demo_source: base_pool`
    pool: tuple[Rollout, ...] | None = None

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
class HintContrast:
    """A per-token modulation of the rollout's advantage by two teacher contexts (RLCSD, arXiv 2606.11709).

    With lp_c = log pi_T(y_t | positive, x, y_<t) and lp_k = log pi_T(y_t | negatives[k], x, y_<t)
    (teacher weights, no gradient), per token t:
        e_t = lp_c − log((1/K) sum_k exp(lp_k))            the contrast of a correct and a wrong hint
        r_t = clip(scale · tanh(e_t / tau), lo, hi),  kept only where |r_t| > threshold (else 0)
        a_t = A + r_t, then clamped to A's sign: max(a_t, 0) if A > 0, min(a_t, 0) if A < 0, 0 if A = 0
    so the verifier decides the direction of every token's update and the hints only its size.
    The plan's `advantage` is A and must be set.
    """

    positive: TeacherContext
    negatives: tuple[TeacherContext, ...]
    scale: float = 0.5
    tau: float = 0.02
    clip: tuple[float, float] = (-2.0, 2.0)
    threshold: float = 0.02

    def __post_init__(self) -> None:
        if not self.negatives:
            raise ValueError("a hint contrast needs at least one negative context")
        if self.tau <= 0 or self.clip[0] > self.clip[1] or self.threshold < 0:
            raise ValueError("a hint contrast needs tau > 0, clip lo <= hi and threshold >= 0")

    @property
    def contexts(self) -> tuple[TeacherContext, ...]:
        """The contexts the core scores, positive first."""
        return (self.positive, *self.negatives)


@dataclass(frozen=True)
class RolloutPlan:
    """The loss terms for one rollout. The empty plan means: no training signal from it."""

    teachers: tuple[TeacherContext, ...] = ()
    combine: Combine = "mixture"
    distill_weight: float = 1.0
    entropy_coef: float = 0.0
    advantage: float | None = None
    teacher_entropy_gate: tuple[float, float] | None = None
    divergence_clip: float | None = None
    teacher_entropy_weight: float | None = None
    kl_coef: float = 0.0
    sft_weight: float = 0.0
    contrast: HintContrast | None = None

    def __post_init__(self) -> None:
        if self.combine == "mixture" and any(t.weight < 0 for t in self.teachers):
            raise ValueError("mixture weights must be >= 0 (negative weights need combine='logmean')")
        if self.teachers and sum(t.weight for t in self.teachers) <= 0:
            raise ValueError("teacher weights must sum to a positive number")
        if self.divergence_clip is not None and self.divergence_clip <= 0:
            raise ValueError("divergence_clip must be > 0 (None: no clip)")
        if self.kl_coef < 0:
            raise ValueError("kl_coef must be >= 0")
        if self.teacher_entropy_weight is not None and self.teacher_entropy_weight < 0:
            raise ValueError("teacher_entropy_weight must be >= 0 (None: no weighting)")
        if self.contrast is not None and self.advantage is None:
            raise ValueError("a hint contrast modulates the advantage: set `advantage` too")

    @property
    def active(self) -> bool:
        return (bool(self.teachers) or self.advantage is not None or self.entropy_coef != 0.0
                or self.kl_coef != 0.0 or self.sft_weight != 0.0)


NO_SIGNAL = RolloutPlan()


class StrategyParams(BaseModel):
    """Base of every strategy's hyperparameter model: unknown keys are errors. With no fields: no knobs."""

    model_config = ConfigDict(extra="forbid")


class DemoSourceParams(StrategyParams):
    """`demo_source` for strategies that teach with a sampled correct demo (issue 29's intervention): the
    trainer fills `Group.pool` for a strategy whose params say `base_pool`; draw through `demo_candidates`."""

    demo_source: DemoSource = Field(
        default="student", description="student: the group's other correct rollouts; base_pool: the base model's "
                                       "correct samples of the problem (drawn once); reference: the reference")


class AdvantageParams(StrategyParams):
    """The knobs of `group_advantages`, for strategies with a GRPO term (grpo, sd_rl_blend, plugins)."""

    scale_rewards: bool = Field(default=True, description="divide by the group's reward std (False: Dr. GRPO)")
    eps: float = Field(default=1e-4, gt=0, description="added to the reward std")


class KLParams(StrategyParams):
    """`kl_coef` for policy-gradient strategies: β of a per-token KL to the frozen base weights (k3, GRPO's)."""

    kl_coef: float = Field(default=0.0, ge=0.0, le=10.0,
                           description="β: per-token KL to the frozen base model, k3 estimator (0: none; "
                                       "arXiv 2402.03300 used 0.04)")

    def no_signal(self, group: Group) -> list[RolloutPlan]:
        """The plans of a group whose rewards carry no advantage: nothing, or only the KL to the base when β > 0
        (the regularizer still pulls toward the base where the reward says nothing)."""
        return [RolloutPlan(kl_coef=self.kl_coef) if self.kl_coef else NO_SIGNAL] * len(group.rollouts)


@runtime_checkable
class Strategy(Protocol):
    """What the core requires of a strategy class `cls`.

    Construction: the core validates a config's hyperparameters with `cls.Params(**values)` and builds
    the strategy as `cls(params)` — one positional argument, the validated `Params` instance.
    `trains = False` skips training (the strategy is evaluated as is). Optional: a class attribute
    `divergence` ("reverse_kl" | "forward_kl" | "jsd") fixes the divergence of this strategy's cells,
    overriding the run's `training.divergence`; absent or None, the run's applies. `StrategyBase`
    provides all of this.
    """

    Params: ClassVar[type[BaseModel]]
    trains: ClassVar[bool]

    def __init__(self, params: BaseModel) -> None:
        ...

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        ...


class StrategyBase:
    """Convenience base: hyperparameters as a pydantic `Params` model, validated on construction."""

    Params: ClassVar[type[BaseModel]] = StrategyParams
    trains: ClassVar[bool] = True
    divergence: ClassVar[str | None] = None     # None: the run's `training.divergence`
    needs_logprob: ClassVar[bool] = False        # True: Rollout.logprob is filled before plan()

    @property
    def needs_reference(self) -> bool:
        """True when plans set `kl_coef` (the core then keeps the base weights frozen beside the student):
        by default, when the params have a positive `kl_coef` (`KLParams`)."""
        return float(getattr(self.params, "kl_coef", 0.0) or 0.0) > 0.0

    def __init__(self, params: BaseModel | None = None, **overrides: object) -> None:
        self.params = params if params is not None else self.Params(**overrides)

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        raise NotImplementedError


# --- helpers shared by the built-ins, public for plugins ---------------------------------------------

def other_correct(group: Group, rollout: Rollout) -> list[Rollout]:
    """C_i: the group's correct rollouts other than `rollout`, in index order (never its own demo)."""
    return [r for r in group.correct if r.index != rollout.index]


def other_wrong(group: Group, rollout: Rollout) -> list[Rollout]:
    """The group's failed rollouts other than `rollout`, in index order (wrong hints; never its own)."""
    return [r for r in group.rollouts if not r.correct and r.index != rollout.index]


def success_rate(group: Group) -> float:
    """p: the share of the group's rollouts that are correct."""
    return len(group.correct) / len(group.rollouts) if group.rollouts else 0.0


def demo_candidates(group: Group, rollout: Rollout, source: DemoSource = "student") -> list[Rollout]:
    """The demos rollout i may be taught by: C_i (`student`), the base pool's correct samples (`base_pool`:
    never one of the student's current rollouts), or the reference solution alone (`reference`)."""
    if source == "student":
        return other_correct(group, rollout)
    if source == "base_pool":
        if group.pool is None:
            raise ValueError("demo_source=base_pool needs the base model's pool (Group.pool), which the trainer "
                             "fills for strategies with a `demo_source` param")
        return [r for r in group.pool if r.correct]
    return [Rollout(index=-1, completion=group.problem.reference, correct=True, reward=1.0)]


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


def class_id(functional_class: str) -> str:
    """A compact id of a class (`class_of`), stable across steps, seeds, arms and processes: 10 hex digits of
    blake2b (a collision among the few dozen classes of one problem has probability ~1e-10). The class
    histograms of evaluation and the trainer's demo log both key by it."""
    return hashlib.blake2b(functional_class.encode(), digest_size=5).hexdigest()


def group_advantages(rewards: Sequence[float], *, scale: bool = True, eps: float = 1e-4) -> list[float] | None:
    """GRPO's group-relative advantages (r_i - mean) / (std + eps), or None when every reward is equal.

    `scale=False` drops the division (Dr. GRPO).
    """
    mean = statistics.fmean(rewards)
    std = statistics.pstdev(rewards)
    if std == 0.0:
        return None
    return [(r - mean) / (std + eps) if scale else r - mean for r in rewards]


def single_demo_plans(group: Group, selection: Selection = "random", source: DemoSource = "student",
                      ) -> list[RolloutPlan]:
    """The paper's plan (arXiv 2606.26091): per rollout, a teacher shown one demo from C_i, or no signal.

    Strategies that build on it (entropy-regularized, RL+SD blend, AntiSD, PMI purification) call it
    so that the same group rng gives them the very same demos as `single_sampled_demo`. `source` other
    than `student` draws from `demo_candidates` instead of C_i.
    """
    plans = []
    for rollout in group.rollouts:
        demos = draw_demos(demo_candidates(group, rollout, source), 1, group.rng, selection)
        plans.append(RolloutPlan(teachers=(TeacherContext(demos=(demos[0].completion,)),)) if demos else NO_SIGNAL)
    return plans


# --- registration ----------------------------------------------------------------------------------

STRATEGIES: Registry[type] = Registry(kind="strategy", group="sdbench.strategies")

StrategyT = TypeVar("StrategyT", bound=type)


def register_strategy(name: str) -> Callable[[StrategyT], StrategyT]:
    """Class decorator: make a strategy available to `sdbench run --strategies NAME`.

    Outside sdbench the name is namespaced by distribution: `mypkg/NAME`. A plugin's entry-point
    name must be this same NAME (the scaffold writes both).
    """
    return STRATEGIES.decorator(name)  # type: ignore[return-value]


def builtin_strategies() -> list[str]:
    """Every built-in strategy (those sdbench itself ships): what `--suite all` runs."""
    return [e.name for e in (STRATEGIES.entry(n) for n in STRATEGIES.names()) if e.distribution == "sdbench"]


def __getattr__(name: str) -> Any:
    # `NoParams` was this base's first name; plugins written from the 0.1 README and scaffold import it.
    if name == "NoParams":
        warnings.warn("sdbench.strategy.NoParams is deprecated: use StrategyParams", DeprecationWarning, stacklevel=2)
        return StrategyParams
    raise AttributeError(f"module 'sdbench.strategy' has no attribute {name!r}")
