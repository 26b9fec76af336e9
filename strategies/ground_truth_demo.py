"""`ground_truth_demo`: self-distillation with the task's reference solution as the demonstration.

Method. On-policy self-distillation with privileged information (OPSD: Zhao et al., 2026,
"Self-Distilled Reasoner: On-Policy Self-Distillation for LLMs"; SDFT: Shenfeld et al., 2026,
"Self-Distillation Enables Continual Learning", arXiv 2601.19897). The student samples
y ~ pi(.|x); the teacher is the same model given the problem's reference solution r before the
question, pi(.|r, x), and the student minimizes D(pi(.|x, y_<t) || pi(.|r, x, y_<t)) on every token
of every rollout. Unlike sampling the demo from the group's own successes, every rollout gets a
teacher (also in groups with no correct rollout), and the demo does not track the student's
dominant modes: the fixed point tilts pi by pmi(y; r | x) for one fixed r, whose mode is the
reference's, not the student's most frequent one.

Run: `sdbench run --strategies ground_truth_demo`; hyperparameters: `sdbench strategies show ground_truth_demo`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sdbench.strategy import Group, RolloutPlan, StrategyBase, TeacherContext, register_strategy


@register_strategy("ground_truth_demo")
class GroundTruthDemo(StrategyBase):
    """The task's reference solution as the demonstration, for every rollout (OPSD; SDFT, arXiv 2601.19897)."""

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        teacher = RolloutPlan(teachers=(TeacherContext(demos=(group.problem.reference,)),))
        return [teacher] * len(group.rollouts)
