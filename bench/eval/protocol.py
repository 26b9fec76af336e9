"""The evaluation protocol (v2): its settings (`EvalConfig`), how one split is evaluated at one set of weights
(`evaluate_at_seed`) and which val point is the best checkpoint (`select_best`).

    out = evaluate_at_seed(model, tokenizer, task, evaluation, "val", seed=0, base_model=base)
    best = select_best(trajectory)          # the step of the highest val pass@1, ties -> earliest

The bottom of the protocol: evaluation along training (`sdbench.eval.along`), the evaluation lane
(`sdbench.eval.lane`), the cell and their fallbacks all evaluate through `evaluate_at_seed`, so they give
the same numbers. `sdbench.config` composes `EvalConfig` into the run configuration (and re-exports it);
importing this module loads no torch (the evaluation itself is imported when it runs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from sdbench.pydantic_base import FrozenModel

if TYPE_CHECKING:
    from sdbench.eval.evaluate import SplitResult
    from sdbench.results.record import EvalPoint
    from sdbench.task import Task

VAL = "val"


class EvalConfig(FrozenModel):
    problems: int = Field(ge=1, le=100_000)
    samples: int = Field(ge=1, le=4096)
    splits: tuple[str, ...] = ("test", "ood")
    # Along training (protocol v2): the val split every `every` optimizer steps, from step 0 (the base
    # model) to the last step; the best-val checkpoint (highest val pass@1) is evaluated on `splits` too.
    every: int = Field(default=25, ge=1, description="evaluate val every K optimizer steps")
    val_problems: int = Field(default=64, ge=1, le=100_000)
    val_samples: int = Field(default=16, ge=1, le=4096)
    backend: Literal["hf", "vllm"] | None = Field(
        default=None, description="sampler of val/test/ood evaluation; None: the training backend")

    @field_validator("samples", "val_samples")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError("must be a power of two so pass@k reaches k = samples")
        return v


def evaluate_at_seed(model, tokenizer, task: Task, evaluation: EvalConfig, split: str, *, seed: int,
                     backend: str = "hf", base_model=None, on_problem: Callable[[int], None] | None = None,
                     ) -> SplitResult:
    """One split as protocol v2 evaluates it: val with `val_problems` x `val_samples` (and kl_from_base
    against `base_model`), test / ood with `problems` x `samples`; the split's own seed, the same at every
    step and checkpoint. The cell, its fallbacks and the evaluation lane all evaluate through this."""
    from sdbench.eval.evaluate import evaluate_split
    from sdbench.seeding import hash_seed
    from sdbench.task import problem_set

    if split == VAL:
        problems, n = problem_set(task, VAL, evaluation.val_problems), evaluation.val_samples
    else:
        problems, n, base_model = problem_set(task, split, evaluation.problems), evaluation.samples, None
    return evaluate_split(model, tokenizer, task, problems, n=n, seed=hash_seed(seed, split), backend=backend,
                          base_model=base_model, on_problem=on_problem)


def select_best(trajectory: Sequence[EvalPoint]) -> int:
    """The step of the highest val pass@1; ties go to the earliest step (less distance from the base)."""
    best = max(p.pass1 for p in trajectory)
    return next(p.step for p in trajectory if p.pass1 == best)
