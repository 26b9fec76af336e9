"""`sd_rl_blend`: one objective mixing GRPO and single-sampled-demo self-distillation.

Method. SDPO (Hübotter et al., 2026, "Reinforcement Learning via Self-Distillation", arXiv
2601.20802; TRL's SDPO, option `distillation_weight`) blends the self-distillation signal with the
GRPO one, A = λ·A_GRPO + (1 − λ)·A_SD. With
blend weight w in [0, 1], rollout i of a group with rewards r costs, per token t,
    loss_t = (1 − w) · ( −A_i · log pi(y_i,t | x, y_i,<t) )
           +      w  · D(pi(.|x, y_i,<t) || pi(.|c_i, x, y_i,<t)),
    A_i = (r_i − mean(r)) / (std(r) + eps)                (GRPO, arXiv 2402.03300)
and c_i is one demo drawn from the other correct rollouts of the group, as in
`single_sampled_demo` (arXiv 2606.26091). w = 0 is GRPO, w = 1 is single-sampled-demo SD; in
between, the reward keeps the ratios among equally correct answers while the teacher supplies
dense token credit. Groups with equal rewards carry only the SD term; rollouts without a demo
carry only the RL term.

Run: `sdbench run --strategies sd_rl_blend`; hyperparameters: `sdbench strategies show sd_rl_blend`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from sdbench.strategy import (
    AdvantageParams,
    DemoSourceParams,
    Group,
    RolloutPlan,
    StrategyBase,
    group_advantages,
    register_strategy,
    single_demo_plans,
)


class SDRLBlendParams(AdvantageParams, DemoSourceParams):
    distillation_weight: float = Field(default=0.5, ge=0.0, le=1.0,
                                       description="w: weight of the SD term; 1 − w weights the GRPO term")


@register_strategy("sd_rl_blend")
class SDRLBlend(StrategyBase):
    """(1 − w)·GRPO + w·single-sampled-demo SD in one plan (SDPO's distillation_weight)."""

    Params = SDRLBlendParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        w = self.params.distillation_weight
        n = len(group.rollouts)
        advantages = group_advantages([r.reward for r in group.rollouts], scale=self.params.scale_rewards,
                                      eps=self.params.eps) if w < 1.0 else None
        # At w = 0 no teacher is drawn or scored: the plan is GRPO's exactly.
        sd = single_demo_plans(group, source=self.params.demo_source) if w > 0.0 else [RolloutPlan()] * n
        return [RolloutPlan(teachers=p.teachers, distill_weight=w if p.teachers else 1.0,
                            advantage=None if advantages is None else (1.0 - w) * advantages[i])
                for i, p in enumerate(sd)]
