"""`grpo`: Group Relative Policy Optimization (Shao et al., 2024, arXiv 2402.03300) — the RL baseline.

Method. For each prompt the student samples a group of G rollouts with rewards r_i (1 if correct).
The advantage of rollout i is its group-normalized reward
    A_i = (r_i - mean(r)) / (std(r) + eps),
and the loss is the on-policy policy gradient -A_i · log pi(y_i,t | x, y_i,<t) for every token
(a single update per batch, so the PPO ratio is 1 and clipping is inactive). Groups whose rewards
are all equal carry no policy-gradient signal.

`kl_coef` (β, default 0: no KL penalty, as in Dr. GRPO / DAPO) adds the GRPO paper's per-token KL to
the frozen base model (arXiv 2402.03300, eq. 4; β = 0.04 there), with its estimator
    k3_t = pi_ref(y_t)/pi(y_t) − log(pi_ref(y_t)/pi(y_t)) − 1     (Schulman's k3; TRL's GRPOTrainer `beta`)
— unbiased for KL(pi || pi_ref) on the student's own samples, never negative, and needing only the
two log-probs of the sampled token (no second [tokens x vocab] pass), which is why GRPO chose it.
With β > 0 every rollout carries the KL term, also in groups of equal rewards (as in the paper, where
the KL is part of every token's objective); with β = 0 the plans are exactly those of plain GRPO.

KL-regularized RL keeps the ratios among equally correct answers, pi*(y) ∝ pi_ref(y) exp(r(y)/β):
the contrast to self-distillation that sdbench measures (arXiv 2606.26091).

Run: `sdbench run --strategies grpo` or `{name: grpo, kl_coef: 0.04}`; `sdbench strategies show grpo`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sdbench.strategy import (
    AdvantageParams,
    Group,
    KLParams,
    RolloutPlan,
    StrategyBase,
    group_advantages,
    register_strategy,
)


class GRPOParams(AdvantageParams, KLParams):
    """GRPO's knobs: those of `group_advantages`, and β of the KL to the base model."""


@register_strategy("grpo")
class GRPO(StrategyBase):
    """Group Relative Policy Optimization: the RL baseline (arXiv 2402.03300), optionally KL-regularized."""

    Params = GRPOParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        p = self.params
        advantages = group_advantages([r.reward for r in group.rollouts], scale=p.scale_rewards, eps=p.eps)
        if advantages is None:
            return p.no_signal(group)
        return [RolloutPlan(advantage=a, kl_coef=p.kl_coef) for a in advantages]
