"""`antisd`: Anti-Self-Distillation — ascend the student–teacher Jensen–Shannon divergence (arXiv 2605.11609).

Method (Shen et al., 2026, "Anti-Self-Distillation for Reasoning RL via Pointwise Mutual
Information"). Descending D(pi(.|x) || pi(.|c, x)) rewards each token by its conditional pmi with
the privileged context c, log pi(y_t|c, x, y_<t) − log pi(y_t|x, y_<t): tokens the demo already
implies gain, deliberation tokens the demo makes unnecessary lose. AntiSD reverses the sign —
it *ascends* a bounded divergence, the Jensen–Shannon divergence (≤ log 2), so the per-token
signal is a bounded advantage — and an entropy-triggered gate switches the term off where the
teacher's entropy has collapsed (there the teacher is a near one-hot copy of the demo and the
term carries no information). The paper uses it as a drop-in replacement for the SD term inside
reasoning RL, on top of the GRPO policy gradient. Per token t of rollout i:
    loss_t = −A_i · log pi(y_i,t | x, y_i,<t)                              (GRPO, arXiv 2402.03300)
           − coef · g_t · JSD_β(pi(.|x, y_i,<t), pi(.|c_i, x, y_i,<t))
    g_t    = 1[ lo ≤ H(pi(.|c_i, x, y_i,<t)) ≤ hi ]
with c_i one demo drawn from the other correct rollouts of the group (as `single_sampled_demo`),
β = the run's `training.jsd_beta` (0.5: the symmetric JSD), and A_i the group-normalized reward.

What is ours, not the paper's: we could not read the paper's exact gate rule (threshold value,
whether it acts per token or on the batch mean, whether it is calibrated), so the gate here is
the per-token window the core offers, with lo = `entropy_floor` (default 0.1 nats) and no upper
bound; `rl_weight` (default 1) scales the GRPO term and 0 gives the pure ascent term.

Run: `sdbench run --strategies antisd`; hyperparameters: `sdbench strategies show antisd`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from sdbench.strategy import (
    Group,
    RolloutPlan,
    StrategyBase,
    StrategyParams,
    group_advantages,
    register_strategy,
    single_demo_plans,
)


class AntiSDParams(StrategyParams):
    coef: float = Field(default=0.5, gt=0.0, le=10.0, description="weight of the JSD ascent term")
    entropy_floor: float = Field(default=0.1, ge=0.0,
                                 description="gate: the term acts only where the teacher entropy (nats) is >= this")
    entropy_ceiling: float | None = Field(default=None, gt=0.0,
                                          description="gate: and <= this (None: no upper bound)")
    rl_weight: float = Field(default=1.0, ge=0.0, le=10.0, description="weight of the GRPO policy-gradient term")


@register_strategy("antisd")
class AntiSD(StrategyBase):
    """Anti-Self-Distillation: ascend the student–teacher JSD under a teacher-entropy gate (arXiv 2605.11609)."""

    Params = AntiSDParams
    divergence: ClassVar[str | None] = "jsd"

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        p = self.params
        advantages = group_advantages([r.reward for r in group.rollouts]) if p.rl_weight > 0 else None
        ceiling = float("inf") if p.entropy_ceiling is None else p.entropy_ceiling
        plans = []
        for i, sd in enumerate(single_demo_plans(group)):
            advantage = None if advantages is None else p.rl_weight * advantages[i]
            if sd.teachers:
                plans.append(RolloutPlan(teachers=sd.teachers, distill_weight=-p.coef, advantage=advantage,
                                         teacher_entropy_gate=(p.entropy_floor, ceiling)))
            else:
                plans.append(RolloutPlan(advantage=advantage))
        return plans
