"""`single_sampled_demo`: self-distillation with one demonstration drawn from the group's own
correct rollouts — the setting of arXiv 2606.26091 (and TRL's SDPO).

Method. For a prompt x the student samples a group y_1..y_G ~ pi(.|x). For each rollout y_i, one
demonstration c is drawn from the *other* correct rollouts of its group, C_i = {y_j : j != i,
y_j correct}, and the teacher is the same model conditioned on it, pi(.|c, x). The student
minimizes, token by token, D(pi(.|x, y_<t) || pi(.|c, x, y_<t)). Rollouts whose group has no
other correct rollout get no teacher signal.

Because c is drawn from the model's own successes, the dominant modes are also the demos drawn
most often: the fixed point tilts pi(y|x) by exp(E_c[pmi(y; c | x)]) and diversity collapses.

Hyperparameters: `selection` — `random` (uniform over C_i) or `first` (the lowest-index correct
rollout other than y_i, as TRL SDPO does); `demo_source` — `student` (C_i, the paper's setting),
`base_pool` (a correct sample of the base model for the problem, from a pool drawn once from the base
weights: the teacher is still conditioned but the demos no longer follow the student — the arm that
separates compounding from conditioning, issue 29) or `reference` (the reference solution).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from sdbench.strategy import (
    DemoSourceParams,
    Group,
    RolloutPlan,
    Selection,
    StrategyBase,
    register_strategy,
    single_demo_plans,
)


class SingleSampledDemoParams(DemoSourceParams):
    selection: Selection = Field(
        default="random", description="random: uniform over the other correct rollouts; first: the lowest-index one")


@register_strategy("single_sampled_demo")
class SingleSampledDemo(StrategyBase):
    """One demonstration sampled from the other correct rollouts of the group (arXiv 2606.26091)."""

    Params = SingleSampledDemoParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        return single_demo_plans(group, self.params.selection, self.params.demo_source)
