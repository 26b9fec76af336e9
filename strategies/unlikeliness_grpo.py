"""`unlikeliness_grpo`: GRPO with the unlikeliness reward (He, Fried & Welleck, 2025, arXiv 2506.02355).

Method. GRPO reinforces the correct rollouts the policy already finds likely more than the rare
correct ones (its "rank bias"), sharpening the distribution. The unlikeliness reward pays a correct
rollout more the less likely it is under the current policy: the G rollouts of a group are ranked by
their mean per-token log-likelihood ℓ_i under the policy that sampled them, rank_i = 0 for the least
likely up to G − 1 for the likeliest (ties by rollout index), and
    r'_i = r_i · (1 − β_rank · rank_i / G),
after which the advantage is GRPO's, A_i = (r'_i − mean(r')) / (std(r') + eps), and the loss the
policy gradient −A_i · log pi(y_i,t | x, y_i,<t). Read from the authors' release,
AndreHe02/rewarding-unlikely-release, verl/trainer/ppo/ray_lean_trainer.py `_compute_advantages`
(`rank_penalty`, 0.25 in examples/lean/grpo.sh: the default here). A group where every rollout is
correct now carries a signal: its unlikely members are pushed up, its likeliest down.

ℓ_i comes from the core (`needs_logprob`: Rollout.logprob / Rollout.length, one scoring forward of the
step's rollouts at the sampling temperature, EOS included). Differences from the release, ours:
the std is the population std and eps = 1e-4 (sdbench's `group_advantages`, so the only difference
from `grpo` is the reward), and no extra PPO epochs (the paper's second mitigation) since sdbench
takes one update per batch for every strategy.

Run: `sdbench run --strategies unlikeliness_grpo`; hyperparameters: `sdbench strategies show unlikeliness_grpo`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from sdbench.strategy import (
    AdvantageParams,
    Group,
    KLParams,
    Rollout,
    RolloutPlan,
    StrategyBase,
    group_advantages,
    register_strategy,
)


class UnlikelinessGRPOParams(AdvantageParams, KLParams):
    rank_penalty: float = Field(default=0.25, ge=0.0, le=1.0,
                                description="β_rank: a correct rollout's reward falls by up to this for the likeliest")


def mean_logprob(rollout: Rollout) -> float:
    """ℓ_i: the rollout's mean per-token log-likelihood (needs the core's Rollout.logprob)."""
    if rollout.logprob is None or rollout.length is None:
        raise ValueError("unlikeliness_grpo needs Rollout.logprob: the core fills it for strategies with "
                         "needs_logprob = True (in a test, pass logprob= and length= to the Rollout)")
    return rollout.logprob / max(rollout.length, 1)


def unlikeliness_rewards(rollouts: Sequence[Rollout], rank_penalty: float) -> list[float]:
    """r'_i = r_i · (1 − β_rank · rank_i / G), rank 0 the least likely rollout (module docstring)."""
    order = sorted(range(len(rollouts)), key=lambda i: (mean_logprob(rollouts[i]), i))
    rank = {i: position for position, i in enumerate(order)}
    g = len(rollouts)
    return [r.reward * (1.0 - rank_penalty * rank[i] / g) for i, r in enumerate(rollouts)]


@register_strategy("unlikeliness_grpo")
class UnlikelinessGRPO(StrategyBase):
    """GRPO whose reward favours unlikely correct rollouts (arXiv 2506.02355)."""

    Params = UnlikelinessGRPOParams
    needs_logprob: ClassVar[bool] = True

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        p = self.params
        rewards = unlikeliness_rewards(group.rollouts, p.rank_penalty)
        advantages = group_advantages(rewards, scale=p.scale_rewards, eps=p.eps)
        if advantages is None:
            return p.no_signal(group)
        return [RolloutPlan(advantage=a, kl_coef=p.kl_coef) for a in advantages]
