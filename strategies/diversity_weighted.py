"""`diversity_weighted`: demonstrations drawn uniformly over distinct solutions, not over samples.

Method. Single-sampled-demo self-distillation (arXiv 2606.26091) draws c uniformly from the other
correct rollouts C_i, i.e. in proportion to how often the student produces each solution, so the
teacher's tilt exp(E_c[pmi(y; c | x)]) favours the dominant modes. Here C_i is first partitioned
into its functional classes K_1..K_n (two rollouts in one class are the same solution) and the
demo is drawn in two stages: a class K uniformly, then a rollout uniformly within K. Each correct
rollout j is thus drawn with probability 1 / (n · |K(j)|) — inverse to its class frequency — so
E_c is taken under the uniform distribution over distinct solutions, and a minority mode
conditions the teacher as often as the dominant one. This is the diversity-weighted
strategy: the direct counter to the mechanism arXiv 2606.26091 identifies. With `num_demos` = M > 1,
M distinct classes are drawn (all when n < M) and their teachers combine as a mixture, p_T = sum_m w_m p(. | c_m, x).

`dissimilarity_weighting` additionally weights each teacher by how different its demo is from the
student rollout y_i:  d_m = max(floor, 1 − J(c_m, y_i)),  J = Jaccard similarity of the two token
sets. Mixture weights are w_m ∝ d_m, and the rollout's distillation weight is the mean of d_m
(the core normalizes mixture weights, so with M = 1 the scale is what carries the weighting):
a rollout that merely repeats its demo is pulled less toward it.

Run: `sdbench run --strategies diversity_weighted`; hyperparameters: `sdbench strategies show diversity_weighted`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from pydantic import Field

from sdbench.strategy import (
    NO_SIGNAL,
    DemoSourceParams,
    Group,
    Rollout,
    RolloutPlan,
    StrategyBase,
    TeacherContext,
    class_of,
    demo_candidates,
    draw_demos,
    register_strategy,
)


class DiversityWeightedParams(DemoSourceParams):
    num_demos: int = Field(default=1, ge=1, le=64, description="M: demos of distinct functional classes per teacher")
    dissimilarity_weighting: bool = Field(
        default=False, description="weight each teacher by max(floor, 1 - token Jaccard(demo, rollout))")
    dissimilarity_floor: float = Field(default=0.1, gt=0.0, le=1.0,
                                       description="lowest teacher weight when a demo repeats the rollout")


def token_jaccard(a: str, b: str) -> float:
    """|A ∩ B| / |A ∪ B| over the whitespace-separated token sets of two texts (1.0 for two empty texts)."""
    ta, tb = set(a.split()), set(b.split())
    if not ta and not tb:
        return 1.0
    return len(ta & tb) / len(ta | tb)


def draw_by_class(candidates: Sequence[Rollout], m: int, rng: random.Random) -> list[Rollout]:
    """Up to m rollouts of distinct functional classes: classes uniformly, then a member uniformly."""
    classes: dict[str, list[Rollout]] = defaultdict(list)
    for r in candidates:
        classes[class_of(r)].append(r)
    keys = draw_demos(sorted(classes), m, rng)   # sorted: the draw must not depend on dict order
    return [rng.choice(classes[k]) for k in keys]


@register_strategy("diversity_weighted")
class DiversityWeighted(StrategyBase):
    """Demos drawn uniformly over distinct functional classes (inverse frequency), optionally dissimilarity-weighted."""

    Params = DiversityWeightedParams

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        p = self.params
        plans = []
        for rollout in group.rollouts:
            demos = draw_by_class(demo_candidates(group, rollout, p.demo_source), p.num_demos, group.rng)
            if not demos:
                plans.append(NO_SIGNAL)
                continue
            if p.dissimilarity_weighting:
                weights = [max(p.dissimilarity_floor, 1.0 - token_jaccard(d.completion, rollout.completion))
                           for d in demos]
            else:
                weights = [1.0] * len(demos)
            teachers = tuple(TeacherContext(demos=(d.completion,), weight=w)
                             for d, w in zip(demos, weights, strict=True))
            plans.append(RolloutPlan(teachers=teachers, distill_weight=sum(weights) / len(weights)))
        return plans

