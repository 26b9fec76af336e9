"""`sc_sdpo`: scale-consistent self-distillation — each question's SD loss weighted by √(p(1−p)) (arXiv 2605.27765).

Method (Liu, Cao, Chen & Honavar, 2026, "Restoring the Sweet Spot: Pass-Rate Weighted Self-Distillation
for LLM Reasoning"). GRPO's group-normalized advantage concentrates learning on questions of
intermediate difficulty; the SDPO loss has no such notion. Extending the learnability analysis to
normalized rewards, the paper finds √(p(1−p)) as the residual per-question scale of GRPO's gradient,
p the question's pass rate, and weights each question's self-distillation loss by it:
    loss_t = w(p) · D(pi(.|x, y_i,<t) || pi(.|c_i, x, y_i,<t)),    w(p) = sqrt(p̂ (1 − p̂)),
with p̂ the share of the group's G rollouts that are correct (a free by-product of the rollouts) and
c_i one demo drawn from the other correct rollouts of the group exactly as `single_sampled_demo`
(same rng draws, so the two are paired and differ only by w). w(0) = w(1) = 0 and w(1/2) = 1/2:
groups that all fail (no demo anyway) or all succeed carry no signal.

Ours: the paper also normalizes the weights over the batch ("batch-adaptive normalization"); a
strategy sees one group, so w is used as is — a global scale that AdamW's per-parameter
normalization largely absorbs, while the relative weights between questions, the method's point,
are kept. Why its own strategy and not a knob on `single_sampled_demo`: it is a published recipe
and so a leaderboard row of its own in `--suite all`.

Run: `sdbench run --strategies sc_sdpo`; hyperparameters: `sdbench strategies show sc_sdpo`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from pydantic import Field

from sdbench.strategy import (
    NO_SIGNAL,
    DemoSourceParams,
    Group,
    RolloutPlan,
    Selection,
    StrategyBase,
    register_strategy,
    single_demo_plans,
    success_rate,
)


class SCSDPOParams(DemoSourceParams):
    selection: Selection = Field(default="random", description="as in single_sampled_demo")


def pass_rate_weight(p: float) -> float:
    """w(p) = sqrt(p (1 − p)): 0 at p = 0 and 1, 1/2 at p = 1/2."""
    return math.sqrt(max(p * (1.0 - p), 0.0))


@register_strategy("sc_sdpo")
class SCSDPO(StrategyBase):
    """Single sampled demo SD with each question weighted by √(p(1−p)) (arXiv 2605.27765)."""

    Params = SCSDPOParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        plans = single_demo_plans(group, self.params.selection, self.params.demo_source)
        w = pass_rate_weight(success_rate(group))
        if w == 0.0:
            return [NO_SIGNAL] * len(plans)
        return [dataclasses.replace(p, distill_weight=w) if p.teachers else p for p in plans]
