"""`rlcsd`: RL with Contrastive on-policy Self-Distillation — GRPO's advantage modulated per token by a
correct-vs-wrong hint contrast (arXiv 2606.11709).

Method (repository THU-BPM/RLCSD: README "Method overview"; the loss in
third_party/verl/verl/trainer/ppo/core_algos.py `compute_policy_loss_rlcsd`, the hint draws in
src/self_distill_main.py). The teacher–student gap under a privileged hint is dominated by style
tokens; the same gap under a *wrong* hint in the identical template shares that style component, so
their difference keeps the task-bearing part. For rollout i with GRPO advantage A_i (arXiv 2402.03300),
a correct hint c⁺ drawn from the group's other correct rollouts and K wrong hints c⁻_1..c⁻_K drawn
without replacement from its other failed rollouts, per token t (teacher weights, no gradient):
    e_t = log pi_T(y_t | c⁺, x, y_<t) − log (1/K) Σ_k pi_T(y_t | c⁻_k, x, y_<t)
    r_t = clip(β·λ · tanh(e_t / τ), lo, hi),   kept where |r_t| > δ
    a_t = A_i + r_t, clamped to A_i's sign (the verifier decides the direction; the hints the size)
    loss_t = −a_t · log pi(y_t | x, y_<t)
(the core's `HintContrast`; the wrong hints are shown in the task's one teacher template, as the
correct one — RLCSD's "identical template"). Defaults are those of the paper's main results,
configs/math_deepmath/qwen3_8b_rlcsd.yaml: τ = 0.02, β·λ = 1.0 · 0.5, δ = 0.02, clip [−2, 2], K = 4
(`rlcsd_k_max`; fewer when fewer failed rollouts exist).

Which hints, as the reference code draws them (src/self_distill_main.py): c⁺ uniformly from the other
correct rollouts (never the rollout itself: "exclude the target rollout from the hint pool"), the K
wrong hints uniformly without replacement from the failed rollouts other than the rollout. A rollout
without both kinds of hint keeps its plain GRPO advantage (the code's "not selected" tokens), and
groups whose rewards are all equal carry no signal (A = 0 there, so a_t = 0 too).

Ours: sdbench takes one update per batch, so the PPO ratio is 1 and RLCSD's clipped two-path surrogate
reduces to the policy gradient above; its separate normalization of modulated and unmodulated tokens
(η = 1) is replaced by the one token mean every strategy's loss takes.

Run: `sdbench run --strategies rlcsd`; hyperparameters: `sdbench strategies show rlcsd`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator

from sdbench.strategy import (
    AdvantageParams,
    Group,
    HintContrast,
    KLParams,
    RolloutPlan,
    StrategyBase,
    TeacherContext,
    draw_demos,
    group_advantages,
    other_correct,
    other_wrong,
    register_strategy,
)


class RLCSDParams(AdvantageParams, KLParams):
    tau: float = Field(default=0.02, gt=0.0, description="τ: temperature of the tanh squash of the contrast")
    scale: float = Field(default=0.5, ge=0.0, le=10.0, description="β·λ: size of the modulation (1.0 · 0.5)")
    threshold: float = Field(default=0.02, ge=0.0, description="δ: modulations no larger than this are dropped")
    clip_low: float = Field(default=-2.0, le=0.0, description="lower clip of the modulation")
    clip_high: float = Field(default=2.0, ge=0.0, description="upper clip of the modulation")
    num_wrong: int = Field(default=4, ge=1, le=64, description="K: wrong hints marginalized per rollout")

    @model_validator(mode="after")
    def _clip_order(self) -> RLCSDParams:
        if self.clip_low > self.clip_high:
            raise ValueError("clip_low must be <= clip_high")
        return self


@register_strategy("rlcsd")
class RLCSD(StrategyBase):
    """GRPO advantage modulated per token by a correct-hint vs wrong-hint teacher contrast (arXiv 2606.11709)."""

    Params = RLCSDParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        p = self.params
        advantages = group_advantages([r.reward for r in group.rollouts], scale=p.scale_rewards, eps=p.eps)
        if advantages is None:
            return p.no_signal(group)
        plans = []
        for rollout, a in zip(group.rollouts, advantages, strict=True):
            correct, wrong = other_correct(group, rollout), other_wrong(group, rollout)
            contrast = None
            if correct and wrong:
                positive = group.rng.choice(correct)
                negatives = draw_demos(wrong, p.num_wrong, group.rng)
                contrast = HintContrast(positive=TeacherContext(demos=(positive.completion,)),
                                        negatives=tuple(TeacherContext(demos=(w.completion,)) for w in negatives),
                                        scale=p.scale, tau=p.tau, clip=(p.clip_low, p.clip_high),
                                        threshold=p.threshold)
            plans.append(RolloutPlan(advantage=a, contrast=contrast, kl_coef=p.kl_coef))
        return plans
