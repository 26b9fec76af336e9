"""Graded samples of one problem -> its per-problem counts (`ProblemCounts`): the one place verdicts are counted.

    from sdbench.results.counts import counts_from_verdicts
    counts = counts_from_verdicts("gsm8k/test/17", task.verify(problem, completions))
    counts.n, counts.c, counts.distinct_correct

The evaluator (`sdbench.eval.evaluate`, which adds the policy's entropy, its KL from the base and the
class histograms), `sdbench verify` and the lm-eval bridge's regrade all count here, so n, c and the
two diversity counts mean the same in every stored result.

`entropy` is the policy's mean per-token entropy on these samples, and None when no policy scored
them (generations graded after the fact: `sdbench verify`, lm-eval's logged samples). 0.0 would claim
a deterministic policy, and a mean over problems would silently average it in; None becomes NaN in
the entropy metric (`sdbench.eval.metrics.problem_metrics`), never a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sdbench.results.record import ProblemCounts


class Graded(Protocol):
    """What is counted of a verdict (`sdbench.task.Verdict` has these)."""

    correct: bool
    functional_class: str | None
    semantic_class: str | None


def counts_from_verdicts(problem_id: str, verdicts: Sequence[Graded], *, entropy: float | None = None,
                         kl_from_base: float | None = None, classes: dict[str, int] | None = None,
                         correct_classes: dict[str, int] | None = None) -> ProblemCounts:
    """n samples, c correct, distinct functional and semantic classes among the correct ones, plus what the
    caller measured besides (see the module docstring for `entropy`)."""
    correct = [v for v in verdicts if v.correct]
    return ProblemCounts(id=problem_id, n=len(verdicts), c=len(correct),
                         distinct_correct=len({v.functional_class for v in correct}),
                         semantic_classes=len({v.semantic_class for v in correct}),
                         entropy=entropy, kl_from_base=kl_from_base, classes=classes,
                         correct_classes=correct_classes)
