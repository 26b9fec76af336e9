"""`srpo`: Sample-Routed Policy Optimization: GRPO on correct rollouts, SD on failed ones (arXiv 2604.02288).

Method (Li et al., 2026). GRPO's sequence-level advantage is reward-aligned but coarse; SDPO's
token-level distillation is dense but, applied to every rollout, collapses late in training. SRPO
routes each rollout to the signal suited to it:
    correct rollout i:  loss_t = −A_i · log pi(y_i,t | x, y_i,<t)           A_i GRPO's (arXiv 2402.03300)
    failed rollout i:   loss_t = w_t · D(pi(.|x, y_i,<t) || pi(.|c_i, x, y_i,<t))   c_i a correct rollout
                                                                      of its group, w_t below
and the batch loss is the mean over all routed tokens (one denominator, the paper's L_final). A
failed rollout with no teacher (no correct rollout in its group) falls back to GRPO, whose advantage
is then 0: no signal. Formula and defaults read from the reference implementation in THU-BPM/RLCSD,
third_party/verl/verl/trainer/ppo/core_algos.py `compute_policy_loss_srpo` and
configs/math_deepmath/qwen3_8b_srpo.yaml: the distillation term is the generalized JSD with α = 0.5
(here: the class fixes `divergence = "jsd"`, β = the run's `training.jsd_beta`, 0.5 by default),
against the run's teacher weights (EMA by default, as there).

Choices, ours: routing is by the verifier's verdict (the paper's c_i), not by the sign of the
advantage as the reference code reads it (the two differ only in all-correct groups, whose
advantage is 0: there the code distills correct rollouts; here they carry no signal, as GRPO).
The demo c_i is drawn from the group's correct rollouts exactly as `single_sampled_demo` draws it
(same rng, `single_demo_plans`).

Entropy-aware dynamic weighting (the paper's DW-SDPO, as `compute_policy_loss_srpo` computes it): each
distilled token's divergence is multiplied by w_t = exp(−β·H(p_teacher,t)), normalized to mean 1 over
the distilled tokens of the batch, so tokens where the teacher is confident count more; β =
`dw_beta` = 1.0 (`srpo_beta`; 0 turns it off). The core's `teacher_entropy_weight`. What the reference
code also has and sdbench does not need: the PPO clip and the importance ratio of SDPO's branch (one
update per batch: the ratio is 1).

Run: `sdbench run --strategies srpo`; hyperparameters: `sdbench strategies show srpo`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from sdbench.strategy import (
    NO_SIGNAL,
    AdvantageParams,
    DemoSourceParams,
    Group,
    KLParams,
    RolloutPlan,
    StrategyBase,
    group_advantages,
    register_strategy,
    single_demo_plans,
)


class SRPOParams(AdvantageParams, KLParams, DemoSourceParams):
    """The GRPO branch's knobs (`group_advantages`, β of an optional KL to the base on that branch) and DW's β."""

    dw_beta: float = Field(default=1.0, ge=0.0, le=100.0,
                           description="β of the distilled tokens' weight exp(−β·H(teacher)), mean 1 (0: uniform)")


@register_strategy("srpo")
class SRPO(StrategyBase):
    """Sample-level routing: GRPO for correct rollouts, demo self-distillation for failed ones (arXiv 2604.02288)."""

    Params = SRPOParams
    divergence: ClassVar[str | None] = "jsd"

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        p = self.params
        advantages = group_advantages([r.reward for r in group.rollouts], scale=p.scale_rewards, eps=p.eps)
        plans = []
        for rollout, sd in zip(group.rollouts, single_demo_plans(group, source=p.demo_source), strict=True):
            if not rollout.correct and sd.teachers:                     # failed: the distillation route
                plans.append(dataclasses.replace(sd, teacher_entropy_weight=p.dw_beta or None))
            elif advantages is not None:
                plans.append(RolloutPlan(advantage=advantages[rollout.index], kl_coef=p.kl_coef))
            else:
                plans.append(NO_SIGNAL)
        return plans
