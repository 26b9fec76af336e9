"""`ssd`: Simple Self-Distillation — cross-entropy on the model's own unverified samples (arXiv 2604.01193).

Method ("Embarrassingly Simple Self-Distillation Improves Code Generation", arXiv 2604.01193; TRL
`trl/experimental/ssd/ssd_config.py`, the `SSDConfig` docstring and fields). Sample completions from the model at a
training-time temperature, then fine-tune on those raw samples with standard cross-entropy — no
verifier, no teacher, no reward:
    loss_t = −log pi(y_i,t | x, y_i,<t)        for every token of every rollout,
with the logits untempered (T = 1) as in supervised fine-tuning (the core's `sft_weight` term), so a
run whose sampling temperature differs from 1 sharpens toward its own tempered samples (the paper's
mechanism). It is the no-verifier baseline: a self-distillation recipe that uses the verifier should
beat it. As TRL's `filter_empty` (default True), empty completions are dropped.

Ours, not the paper's: the samples come from the run's sampler at `training.temperature`, without the
paper's top-k / top-p truncation (sdbench's sampler has none), and with one gradient step per batch
of fresh samples (on-policy) instead of one fine-tuning pass over a fixed set of samples.

Run: `sdbench run --strategies ssd`; hyperparameters: `sdbench strategies show ssd`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from sdbench.strategy import NO_SIGNAL, Group, RolloutPlan, StrategyBase, StrategyParams, register_strategy


class SSDParams(StrategyParams):
    filter_empty: bool = Field(default=True, description="drop empty completions (TRL SSDConfig.filter_empty)")


@register_strategy("ssd")
class SSD(StrategyBase):
    """Simple self-distillation: cross-entropy on every own sample, no verifier (arXiv 2604.01193)."""

    Params = SSDParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        keep = RolloutPlan(sft_weight=1.0)
        return [NO_SIGNAL if self.params.filter_empty and not r.completion.strip() else keep
                for r in group.rollouts]
