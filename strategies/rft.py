"""`rft`: rejection-sampling fine-tuning on the model's own correct samples — the SFT baseline.

Method. Rejection-sampling fine-tuning (RFT; Yuan et al., 2023, arXiv 2308.01825; STaR, Zelikman
et al., 2022, arXiv 2203.14465), run on-policy: the student samples a group y_1..y_G ~ pi(.|x),
the verifier keeps the correct ones, and the student maximizes their likelihood,
    loss_t = −1[y_i correct] · log pi(y_i,t | x, y_i,<t),
i.e. a policy gradient with advantage 1 on correct rollouts and no signal on the others (no
teacher, no baseline). With `dedupe`, as in RFT's selection of distinct reasoning paths, only the
first (lowest-index) correct rollout of each functional class is kept, so a solution the model
repeats does not get more gradient than a rare one.

Run: `sdbench run --strategies rft`; hyperparameters: `sdbench strategies show rft`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from sdbench.strategy import NO_SIGNAL, Group, RolloutPlan, StrategyBase, StrategyParams, class_of, register_strategy


class RFTParams(StrategyParams):
    dedupe: bool = Field(default=False, description="keep one correct rollout per functional class")


@register_strategy("rft")
class RFT(StrategyBase):
    """Rejection-sampling fine-tuning: SFT on the group's correct rollouts (arXiv 2308.01825)."""

    Params = RFTParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        seen: set[str] = set()
        plans = []
        for rollout in group.rollouts:
            keep = rollout.correct and not (self.params.dedupe and class_of(rollout) in seen)
            if keep:
                seen.add(class_of(rollout))
            plans.append(RolloutPlan(advantage=1.0) if keep else NO_SIGNAL)
        return plans
