"""The generated "What it shows" (sdbench.leaderboard.claims) on hand-set matched deltas: which comparisons become
sentences, with which direction and sign.

    pytest tests/leaderboard/test_leaderboard_claims.py

A results document from the shared fixtures (one task, base / single_sampled_demo / grpo) gets hand-written
matched deltas, so every interval, and so every expected sentence, is known exactly.
"""

from __future__ import annotations

from lb_fixtures import make_results

from sdbench.leaderboard.claims import claims, what_it_shows
from sdbench.leaderboard.schema import Results
from sdbench.results.record import MatchedDelta, Stat

SD, RL = "single_sampled_demo", "grpo"


def _delta(match: str, level: float, distinct: Stat, second: Stat, n_seeds: int = 2) -> MatchedDelta:
    """grpo minus SD (the stored direction the claims flip), as `sdbench.runs.compare` writes it."""
    other = "kl_from_base" if match == "pass@1" else "pass@1"
    return MatchedDelta(strategy=RL, baseline=SD, task="graph_paths", match=match, level=level, n_seeds=n_seeds,
                        n_seeds_baseline=2, metrics={"distinct_correct": distinct, other: second})


def _results(deltas: list[MatchedDelta]) -> Results:
    doc = Results.model_validate(make_results("claims", strategies=("base", SD, RL), seeds=2))
    return doc.model_copy(update={"summary": doc.summary.model_copy(update={"deltas": [], "matched_deltas": deltas})})


def test_iso_accuracy_claims_state_a_direction_only_where_the_ci_excludes_zero() -> None:
    doc = _results([
        _delta("pass@1", 0.3, Stat(mean=-0.2, ci_low=-0.3, ci_high=-0.1), Stat(mean=0.01, ci_low=-0.02, ci_high=0.04)),
        _delta("pass@1", 0.5, Stat(mean=0.1, ci_low=-0.2, ci_high=0.4), Stat(mean=0.05, ci_low=0.01, ci_high=0.09), 1),
        _delta("kl_from_base", 0.1, Stat(mean=0.05, ci_low=-0.1, ci_high=0.2), Stat(mean=0.2, ci_low=0.1, ci_high=0.3)),
        _delta("pass@1", 0.4, Stat(mean=0.3, ci_low=0.2, ci_high=0.4), Stat(mean=0.02, ci_low=-0.01, ci_high=0.05)),
    ])
    # levels in order, KL first; SD minus grpo: each stored interval negated and flipped
    found = [(c.where, c.text()) for c in claims([doc])]
    assert found == [
        ("KL 0.1 (val; seeds reaching it: single_sampled_demo 2/2, grpo 2/2)",
         "distinct correct: no detectable difference from grpo (-0.050 [-0.200, +0.100])"),
        ("KL 0.1 (val; seeds reaching it: single_sampled_demo 2/2, grpo 2/2)",
         "pass@1 lower than grpo (-0.200 [-0.300, -0.100])"),
        ("val pass@1 0.3 (iso-accuracy, val; seeds reaching it: single_sampled_demo 2/2, grpo 2/2)",
         "distinct correct higher than grpo (+0.200 [+0.100, +0.300])"),
        ("val pass@1 0.3 (iso-accuracy, val; seeds reaching it: single_sampled_demo 2/2, grpo 2/2)",
         "KL from base: no detectable difference from grpo (-0.010 [-0.040, +0.020])"),
        ("val pass@1 0.4 (iso-accuracy, val; seeds reaching it: single_sampled_demo 2/2, grpo 2/2)",
         "distinct correct lower than grpo (-0.300 [-0.400, -0.200])"),
        ("val pass@1 0.4 (iso-accuracy, val; seeds reaching it: single_sampled_demo 2/2, grpo 2/2)",
         "KL from base: no detectable difference from grpo (-0.020 [-0.050, +0.010])"),
        ("val pass@1 0.5 (iso-accuracy, val; seeds reaching it: single_sampled_demo 2/2, grpo 1/2)",
         "distinct correct: no detectable difference from grpo (-0.100 [-0.400, +0.200])"),
        ("val pass@1 0.5 (iso-accuracy, val; seeds reaching it: single_sampled_demo 2/2, grpo 1/2)",
         "KL from base lower than grpo (-0.050 [-0.090, -0.010])"),
    ]
    text = what_it_shows([doc])
    assert ("- val pass@1 0.3 (iso-accuracy, val; seeds reaching it: single_sampled_demo 2/2, grpo 2/2): distinct "
            "correct higher than grpo (+0.200 [+0.100, +0.300]); KL from base: no detectable difference from grpo "
            "(-0.010 [-0.040, +0.020]).") in text


def test_results_without_iso_accuracy_deltas_get_no_such_sentence() -> None:
    doc = _results([_delta("kl_from_base", 0.1, Stat(mean=0.0, ci_low=-0.1, ci_high=0.1),
                           Stat(mean=0.2, ci_low=0.1, ci_high=0.3))])
    assert [c.where.split(" (")[0] for c in claims([doc])] == ["KL 0.1", "KL 0.1"]
    assert "iso-accuracy" not in what_it_shows([doc])


def test_mechanism_sentences_read_each_slope_against_zero() -> None:
    """Hand-set mechanism arms: a slope whose CI is above 0, one across 0 and one below 0 each get their
    verdict, with the null and the dominant share from step 0 to the last step; an arm without a slope (one
    val step) gets no phrase."""
    from sdbench.leaderboard.claims import mechanism_claims

    def stat(mean: float, lo: float, hi: float) -> dict:
        return {"mean": mean, "ci_low": lo, "ci_high": hi}

    def arm(strategy: str, slope: dict | None) -> dict:
        return {"strategy": strategy, "task": "graph_paths", "slope": slope, "null_slope": stat(0.01, -0.1, 0.1),
                "steps": [{"step": 0, "dominant_share": stat(0.4, 0.3, 0.5)},
                          {"step": 25, "dominant_share": stat(0.7, 0.6, 0.8)}]}

    doc = _results([])
    rl, kl = arm(RL, stat(0.05, -0.1, 0.2)), arm("grpo[kl_coef=0.04]", stat(-0.2, -0.3, -0.1))
    rl["slope_vs"] = {"strategy": SD, **stat(-0.25, -0.5, 0.05)}
    kl["slope_vs"] = {"strategy": SD, **stat(-0.5, -0.7, -0.3)}
    mech = {"definition": "d", "arms": [arm(SD, stat(0.3, 0.1, 0.5)), rl, kl, arm("base", None)]}
    doc = doc.model_copy(update={"summary": doc.summary.model_copy(update={"mechanism": mech})})
    assert mechanism_claims([doc]) == {"graph_paths": [
        f"`{SD}` above 0 (+0.300 [+0.100, +0.500]; null +0.010, dominant share 0.40 → 0.70)",
        f"`{RL}` no detectable difference from 0 (+0.050 [-0.100, +0.200]; null +0.010, dominant share 0.40 → 0.70)"
        f"; against `{SD}`'s slope: no detectable difference (-0.250 [-0.500, +0.050])",
        "`grpo[kl_coef=0.04]` below 0 (-0.200 [-0.300, -0.100]; null +0.010, dominant share 0.40 → 0.70)"
        f"; against `{SD}`'s slope: lower (-0.500 [-0.700, -0.300])"]}
    text = what_it_shows([doc])
    assert text.splitlines()[-1].startswith("- mechanism (val, amplification slope at the last val step")
    assert mechanism_claims([_results([])]) == {}


def test_winners_need_pass1_above_zero_and_no_detectable_pass_k_loss() -> None:
    """Against the base at the final step: an arm wins with Δ pass@1's CI above 0 and Δ pass@16's CI not below 0
    (including 0 is no detectable loss); a Δ pass@1 CI touching 0, or a Δ pass@16 CI below 0, does not win.
    Winners are listed by Δ pass@1, largest first."""
    from sdbench.leaderboard.claims import winners
    from sdbench.results.record import Delta

    def delta(strategy: str, p1: tuple[float, float, float], p16: tuple[float, float, float]) -> Delta:
        return Delta(strategy=strategy, baseline="base", task="graph_paths", split="test", checkpoint="final",
                     metrics={"pass@1": Stat(mean=p1[0], ci_low=p1[1], ci_high=p1[2]),
                              "pass@16": Stat(mean=p16[0], ci_low=p16[1], ci_high=p16[2])})

    doc = _results([])
    deltas = [delta("a", (0.1, 0.05, 0.15), (-0.01, -0.03, 0.01)),      # wins
              delta("b", (0.2, 0.1, 0.3), (0.02, 0.0, 0.04)),          # wins (CI touches 0 from above)
              delta("c", (0.1, 0.0, 0.2), (0.0, -0.01, 0.01)),         # pass@1 CI touches 0: no
              delta("d", (0.3, 0.2, 0.4), (-0.1, -0.2, -0.01))]        # loses pass@16: no
    doc = doc.model_copy(update={"summary": doc.summary.model_copy(update={"deltas": deltas})})
    assert winners([doc]) == {"graph_paths": [
        "`b` (pass@1 +0.200 [+0.100, +0.300], pass@16 +0.020 [+0.000, +0.040])",
        "`a` (pass@1 +0.100 [+0.050, +0.150], pass@16 -0.010 [-0.030, +0.010])"]}
    assert "win pass@1 without losing pass@16" in what_it_shows([doc])
