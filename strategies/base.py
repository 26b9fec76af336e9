"""`base`: no training. The base model, evaluated as is — the reference every strategy moves from."""

from __future__ import annotations

from collections.abc import Sequence

from sdbench.strategy import NO_SIGNAL, Group, RolloutPlan, StrategyBase, register_strategy


@register_strategy("base")
class Base(StrategyBase):
    """No training: the base policy pi_0, evaluated as is."""

    trains = False

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        return [NO_SIGNAL] * len(group.rollouts)
