"""Matched-budget comparisons and checkpoint rules (sdbench.runs.compare, sdbench.runs.stats.reach) on
hand-built trajectories with exact expected values.

    pytest tests/test_compare.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

from sdbench.results.record import CellRecord, EvalPoint, ProblemCounts, StrategyInfo
from sdbench.runs.compare import _argmax, _one_se, _smoothed, checkpoint_rules, matched_comparisons
from sdbench.runs.stats import reach


def _points(pass1: list[list[float]], kl: list[list[float]], distinct: list[list[float]],
            problems: int = 4) -> dict[int, dict[str, np.ndarray]]:
    """step -> metric -> [seeds, problems]; every problem of a seed has the seed's value (steps 0, 10, 20...)."""
    out = {}
    for j in range(len(pass1[0])):
        out[10 * j] = {name: np.array([[v[s][j]] * problems for s in range(len(v))])
                       for name, v in (("pass@1", pass1), ("kl_from_base", kl), ("distinct_correct", distinct))}
    return out


def test_reach_interpolates_at_the_first_crossing_and_drops_seeds_that_never_get_there() -> None:
    points = _points(pass1=[[0.2, 0.4, 0.6], [0.2, 0.3, 0.35]], kl=[[0.0, 0.1, 0.3], [0.0, 0.05, 0.1]],
                     distinct=[[5.0, 4.0, 2.0], [5.0, 4.5, 4.0]])
    seeds, values = reach(points, "kl_from_base", 0.2)
    # seed 0 crosses between KL 0.1 and 0.3: weight (0.2 - 0.1) / 0.2 = 0.5; seed 1 never reaches 0.2
    assert seeds == [0]
    assert values["pass@1"][0] == pytest.approx([0.5] * 4) and values["distinct_correct"][0] == pytest.approx([3.0] * 4)
    seeds, values = reach(points, "pass@1", 0.3)
    # seed 0 between 0.2 and 0.4 (weight 0.5, KL 0.05); seed 1 exactly at its step-10 point (KL 0.05)
    assert seeds == [0, 1]
    assert values["kl_from_base"][:, 0] == pytest.approx([0.05, 0.05])
    assert values["distinct_correct"][:, 0] == pytest.approx([4.5, 4.5])


def test_matched_deltas_pair_arms_at_the_same_level() -> None:
    sd = _points(pass1=[[0.2, 0.4], [0.2, 0.4]], kl=[[0.0, 0.2], [0.0, 0.2]], distinct=[[5.0, 3.0], [5.0, 3.0]])
    rl = _points(pass1=[[0.2, 0.6], [0.2, 0.6]], kl=[[0.0, 0.2], [0.0, 0.2]], distinct=[[5.0, 2.0], [5.0, 2.0]])
    iso, deltas = matched_comparisons({("single_sampled_demo", "t"): sd, ("grpo", "t"): rl})
    # iso levels: the step-0 pass@1 (0.2) plus 0.05, 0.1, 0.2, 0.3, 0.4 -> 0.25 ... 0.6
    assert sorted({e["level"] for e in iso}) == [0.25, 0.3, 0.4, 0.5, 0.6]
    at = {(d["strategy"], d["match"], d["level"]): d for d in deltas}
    # matched KL 0.1: both halfway (weight 0.5): SD distinct 4.0, RL 3.5 -> grpo - SD = -0.5, no seed or problem spread
    d = at[("grpo", "kl_from_base", 0.1)]
    assert d["metrics"]["distinct_correct"].mean == pytest.approx(-0.5)
    assert d["metrics"]["distinct_correct"].ci_low == pytest.approx(-0.5)
    assert d["metrics"]["pass@1"].mean == pytest.approx(0.1)   # 0.4 vs 0.3 halfway
    # matched val pass@1 0.4: SD at its step-10 point (distinct 3.0); RL at weight 0.5 (distinct 3.5)
    assert at[("grpo", "pass@1", 0.4)]["metrics"]["distinct_correct"].mean == pytest.approx(0.5)
    assert ("grpo", "pass@1", 0.6) not in at   # SD never reaches 0.6: no paired delta there


def test_rules_on_one_curve() -> None:
    means = np.array([0.30, 0.50, 0.58, 0.60, 0.59, 0.61])
    ses = np.full(6, 0.02)
    assert int(_argmax(means, ses)) == 5
    assert int(_one_se(means, ses)) == 3            # earliest within 0.02 of 0.61: 0.60 at index 3 (0.58 is not)
    assert int(_smoothed(means, ses)) == 5          # 3-point means ..., 0.5900, 0.6000, (0.59 + 2 * 0.61) / 3 = 0.6033


def _record(key: str, curve: list[list[float]]) -> CellRecord:
    """A cell whose val point j has per-problem pass@1 curve[j] (n = 4 samples each)."""
    traj = [EvalPoint(step=25 * j, n=4, problems=[ProblemCounts(id=f"p{i}", n=4, c=int(round(4 * v)),
                                                                distinct_correct=0, semantic_classes=0, entropy=None)
                                                  for i, v in enumerate(values)])
            for j, values in enumerate(curve)]
    return CellRecord(key=key, task="t", seed=0, status="ok", strategy=StrategyInfo(name="s", label="s"),
                      config_hash="h", trajectory=traj)


def test_checkpoint_rules_agree_on_a_clear_peak_and_are_deterministic() -> None:
    rng = np.random.default_rng(0)
    problems = 32
    # a clear peak at step 2 on every problem: every half picks it, every pair agrees
    peak = [[0.0] * problems, [0.5] * problems, [1.0] * problems, [0.25] * problems]
    rules = checkpoint_rules([_record("a", peak)])
    assert {r["rule"]: r["agreement"] for r in rules} == {"one_se": 1.0, "argmax": 1.0, "smoothed_argmax": 1.0}
    assert [r["chosen"] for r in rules] == [False, True, False]   # the pinned rule (argmax), whatever the figures
    # a noisy plateau: the rules differ, and the same records in another order give the same figures
    noisy = [list(rng.integers(0, 5, problems) / 4) for _ in range(6)]
    other = [list(rng.integers(0, 5, problems) / 4) for _ in range(6)]
    recs = [_record("a", noisy), _record("b", other)]
    assert checkpoint_rules(recs) == checkpoint_rules(recs[::-1])
    assert all(r["n_pairs"] == 100 for r in checkpoint_rules(recs))


def test_the_pinned_rule_is_what_best_val_selects() -> None:
    """The table's pinned rule and the best-val rows' `select_best` choose the same step (ties: the earliest)."""
    from sdbench.eval.protocol import select_best
    from sdbench.runs.compare import PINNED_RULE, RULES

    rng = np.random.default_rng(1)
    for _ in range(20):
        curve = [list(rng.integers(0, 3, 8) / 2) for _ in range(5)]   # coarse values: ties between steps are common
        rec = _record("a", curve)
        means = np.array([p.pass1 for p in rec.trajectory])
        step = rec.trajectory[int(RULES[PINNED_RULE](means, np.zeros_like(means)))].step
        assert step == select_best(rec.trajectory)
