"""`passk_grpo`: Pass@k training with the analytic pass@k advantage (Chen et al., 2025, arXiv 2508.10751).

Method. The reward of a group is pass@k — the best verdict among k of its rollouts — instead of each
rollout's own verdict, so the policy is paid for the group containing *some* correct answer, not
for every rollout repeating the likeliest one: exploration is rewarded. Averaging the GRPO-normalized
advantage of every k-subset of the G rollouts over the subsets that contain rollout i gives a
closed form (repository RUCAIBox/Passk_Training, code/passk_adv.py `calc_adv`, and its README):
    R̄ = 1 − C(N_neg, k) / C(G, k)                         (expected pass@k of a random k-subset)
    σ = sqrt(R̄ (1 − R̄))
    A_pos = (1 − R̄) / (σ + ε)
    A_neg = (1 − R̄ − C(N_neg − 1, k − 1) / C(G − 1, k − 1)) / (σ + ε)
with N_neg the group's failed rollouts and ε = 1e-6 (as in calc_adv). The loss is the policy gradient
−A_i · log pi(y_i,t | x, y_i,<t) per token, as `grpo`. With k = 1 this is GRPO's advantage (std
normalized, no Bessel correction). Groups where every k-subset has the same pass@k (all failed,
or fewer than k failures) carry no signal.

Defaults: k = 4 (our choice within the paper's range; the paper reports pass@k training robust to k),
which needs G ≥ 4 rollouts per prompt (smoke and quick profiles have 4 and 8). `kl_coef` adds GRPO's
KL to the base model (0 by default, as the paper's setup).

Run: `sdbench run --strategies passk_grpo`; hyperparameters: `sdbench strategies show passk_grpo`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import Field

from sdbench.strategy import Group, KLParams, RolloutPlan, StrategyBase, register_strategy


class PasskGRPOParams(KLParams):
    k: int = Field(default=4, ge=1, le=1024, description="k of the pass@k reward (at most the rollouts per prompt)")
    eps: float = Field(default=1e-6, gt=0, description="added to σ (calc_adv's 1e-6)")


def passk_advantages(correct: Sequence[bool], k: int, eps: float = 1e-6) -> list[float]:
    """The analytic pass@k advantage of each rollout (module docstring), in rollout order."""
    n, n_neg = len(correct), sum(not c for c in correct)
    if not 1 <= k <= n:
        raise ValueError(f"passk_grpo needs 1 <= k <= rollouts per prompt, got k={k} for {n} rollouts "
                         "(lower k or raise training.rollouts_per_prompt)")
    mean = 1.0 - math.comb(n_neg, k) / math.comb(n, k)
    sigma = math.sqrt(mean * (1.0 - mean))
    pos = (1.0 - mean) / (sigma + eps)
    neg = (1.0 - mean - math.comb(n_neg - 1, k - 1) / math.comb(n - 1, k - 1)) / (sigma + eps) if n_neg else 0.0
    return [pos if c else neg for c in correct]


@register_strategy("passk_grpo")
class PasskGRPO(StrategyBase):
    """Pass@k training: GRPO with the analytic pass@k advantage (arXiv 2508.10751)."""

    Params = PasskGRPOParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        p = self.params
        advantages = passk_advantages([r.correct for r in group.rollouts], p.k, p.eps)
        if not any(advantages):
            return p.no_signal(group)
        return [RolloutPlan(advantage=a, kl_coef=p.kl_coef) for a in advantages]
