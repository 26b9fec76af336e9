"""`multi_demo`: self-distillation from a teacher that sees several of the group's correct rollouts.

Method. As in single-sampled-demo self-distillation (arXiv 2606.26091; SDPO), rollout y_i of a
group is scored by the same model conditioned on demonstrations, but with M of them: c_1..c_M
drawn without replacement from the other correct rollouts C_i = {y_j : j != i, y_j correct}
(all of C_i when |C_i| < M; no signal when C_i is empty). The M contexts combine into one teacher:
    mixture   p_T(.) = (1/M) sum_m p(. | c_m, x)                       (average the probabilities)
    logmean   p_T(.) ∝ exp((1/M) sum_m log p(. | c_m, x))              (product of experts)
or, with `concat`, one context holding all M demos in order, p_T(.) = p(. | c_1 .. c_M, x), the
many-shot prompt of in-context learning (Brown et al., 2020, arXiv 2005.14165). The student
minimizes D(p_student || p_T) per token. Averaging over demos estimates E_c[p(.|c, x)] instead of
one draw of it, which lowers the variance of the teacher but keeps its expectation — and therefore
keeps the tilt toward the modes that dominate C_i (arXiv 2606.26091).

`demo_source` (student | base_pool | reference) as in `single_sampled_demo` (issue 29).

With M = 1 the plan equals `single_sampled_demo` for the same group rng (the same draws).

Run: `sdbench run --strategies multi_demo`; hyperparameters: `sdbench strategies show multi_demo`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from sdbench.strategy import (
    NO_SIGNAL,
    Combine,
    DemoSourceParams,
    Group,
    RolloutPlan,
    Selection,
    StrategyBase,
    TeacherContext,
    demo_candidates,
    draw_demos,
    register_strategy,
)


class MultiDemoParams(DemoSourceParams):
    num_demos: int = Field(default=4, ge=1, le=64, description="M: demos per teacher (fewer if fewer exist)")
    combine: Combine = Field(default="mixture", description="mixture of probabilities or mean of log-probabilities")
    concat: bool = Field(default=False, description="one teacher context holding the M demos, concatenated")
    selection: Selection = Field(
        default="random", description="random: without replacement; first: the M lowest-index correct rollouts")


@register_strategy("multi_demo")
class MultiDemo(StrategyBase):
    """M demonstrations from the other correct rollouts, combined as mixture, log-mean or one context."""

    Params = MultiDemoParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        p = self.params
        plans = []
        for rollout in group.rollouts:
            candidates = demo_candidates(group, rollout, p.demo_source)
            demos = [d.completion for d in draw_demos(candidates, p.num_demos, group.rng, p.selection)]
            if not demos:
                plans.append(NO_SIGNAL)
            elif p.concat:
                plans.append(RolloutPlan(teachers=(TeacherContext(demos=tuple(demos)),)))
            else:
                # Weight 1/M each (M = the demos actually drawn); with M = 1 the plan is single_sampled_demo's.
                plans.append(RolloutPlan(teachers=tuple(TeacherContext(demos=(d,), weight=1.0 / len(demos))
                                                        for d in demos), combine=p.combine))
        return plans
