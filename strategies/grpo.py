"""`grpo`: Group Relative Policy Optimization (Shao et al., 2024, arXiv 2402.03300) — the RL baseline.

Method. For each prompt the student samples a group of G rollouts with rewards r_i (1 if correct).
The advantage of rollout i is its group-normalized reward
    A_i = (r_i - mean(r)) / (std(r) + eps),
and the loss is the on-policy policy gradient -A_i · log pi(y_i,t | x, y_i,<t) for every token
(a single update per batch, so the PPO ratio is 1 and clipping is inactive; no KL penalty, as in
Dr. GRPO / DAPO). Groups whose rewards are all equal carry no signal.

KL-regularized RL keeps the ratios among equally correct answers, pi*(y) ∝ pi(y) exp(r(y)/beta):
the contrast to self-distillation that sdbench measures.
"""

from __future__ import annotations

from collections.abc import Sequence

from sdbench.strategy import (
    NO_SIGNAL,
    AdvantageParams,
    Group,
    RolloutPlan,
    StrategyBase,
    group_advantages,
    register_strategy,
)


class GRPOParams(AdvantageParams):
    """GRPO's knobs are exactly those of `group_advantages`."""


@register_strategy("grpo")
class GRPO(StrategyBase):
    """Group Relative Policy Optimization: the RL baseline (arXiv 2402.03300)."""

    Params = GRPOParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        advantages = group_advantages([r.reward for r in group.rollouts], scale=self.params.scale_rewards,
                                      eps=self.params.eps)
        if advantages is None:
            return [NO_SIGNAL] * len(group.rollouts)
        return [RolloutPlan(advantage=a) for a in advantages]
