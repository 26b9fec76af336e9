"""`opsd`: On-Policy Self-Distillation with the per-token divergence clip (arXiv 2601.18734; siyan-zhao/OPSD).

Method (Zhao et al., 2026, "Self-Distilled Reasoner: On-Policy Self-Distillation for LLMs"). The
teacher is the same model given the problem's reference solution r before the question, and the
student minimizes per token a divergence to it on its own rollouts — `ground_truth_demo`'s loss — with
the per-token clip of OPSD's 2026-03 update, motivated there by style tokens carrying 6–15× more of
the divergence than reasoning tokens (so a few style tokens dominate the loss):
    loss_t = min(D(pi(.|x, y_<t) || pi(.|r, x, y_<t)), κ),
the core's `divergence_clip` (a clipped token gives no gradient). Defaults: D the generalized JSD
with β = 0.5 (siyan-zhao/OPSD scripts/run_opsd.sh `--beta 0.5`; the class fixes `divergence = "jsd"`,
β = the run's `training.jsd_beta`) and κ = 0.05. The snapshot of siyan-zhao/OPSD we could read
(commit 590ec26, opsd_trainer.py `generalized_jsd_loss`) predates the clip, so κ and the clip's form
are read from the reproduction in THU-BPM/RLCSD: configs/math_deepmath/qwen3_8b_opsd.yaml
(`jsd_token_clip: 0.05`) and third_party/verl/verl/trainer/ppo/core_algos.py `compute_policy_loss_opsd`
("match official OPSD: clip per-(token, vocab) KL contribution before summing over vocab").

Choices, ours: the official code clips each vocabulary entry's contribution to the divergence before
summing over the vocabulary; sdbench clips the per-token divergence (the sum) instead — the fused
kernels form the divergence and its gradient in one pass over vocabulary chunks, and an element-wise
clip would need a change to every kernel backend; the per-token clip bounds the same style-token
outliers, but it is not the same function. The OPSD scripts use a fixed teacher (`--fixed_teacher`);
the teacher here follows the run's `training.teacher` (EMA by default) so the strategy pairs with
`ground_truth_demo`; `{name: opsd, training: {teacher: frozen}}` is the paper's setting.
Why a strategy of its own: OPSD's recipe (reference teacher + JSD + clip) is a leaderboard row in
`--suite all`, while `ground_truth_demo` stays the unclipped baseline it is compared with.

Run: `sdbench run --strategies opsd`; hyperparameters: `sdbench strategies show opsd`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from sdbench.strategy import Group, RolloutPlan, StrategyBase, StrategyParams, TeacherContext, register_strategy


class OPSDParams(StrategyParams):
    token_clip: float | None = Field(default=0.05, gt=0.0,
                                     description="κ: per-token clip of the divergence (None: no clip)")


@register_strategy("opsd")
class OPSD(StrategyBase):
    """The reference solution as the demo, JSD per token clipped at κ (OPSD, arXiv 2601.18734)."""

    Params = OPSDParams
    divergence: ClassVar[str | None] = "jsd"

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        plan = RolloutPlan(teachers=(TeacherContext(demos=(group.problem.reference,)),),
                           divergence_clip=self.params.token_clip)
        return [plan] * len(group.rollouts)
