"""The mechanism section of a run's summary, summary.md, report.html and the leaderboard (issue 29).

    from sdbench.runs.mechanism_report import section, markdown_lines, table, arms_of
    summary.mechanism = section([(label, task, records), ...])      # summary.json's `mechanism`
    markdown_lines(summary)                                          # summary.md's "## Mechanism"
    header, rows = table(summary, task)                              # report.html, leaderboard
    mechanism_svg(task, arms_of(summary, task))                      # sdbench.presentation.plots

The numbers come from `sdbench.eval.mechanism.measure_arm` (its docstring defines them); this module only
arranges them. A summary without the section (schema 2, or records without class histograms) shows
"not measured" (`sdbench.presentation.text.NOT_MEASURED`); its plot is `sdbench.presentation.plots.mechanism_svg`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sdbench.config import PAPER_BASELINE
from sdbench.eval.mechanism import measure_arm, slope_difference
from sdbench.presentation.text import fmt, md_table

DEFINITION = ("dominant share: share of correct samples in the base's most frequent correct class (chosen on the "
              "other seeds' step-0 samples); effective classes: exp(entropy) of the correct-class distribution; "
              "slope b of log(s_t/s_0) on log s_0 over the base's correct classes with problem fixed effects "
              "(step 0 split in halves: x from one, the baseline from the other; Jeffreys +1/2; problems with >= 2 "
              "base classes and >= 2 correct samples): b > 0 large modes grow (the SD fixed point "
              "pi* ∝ pi·exp(E_c[pmi(y;c|x)])), b = 0 ratios kept (KL-regularized RL, pi* ∝ pi·exp(r/beta)); "
              "null: the same estimator on two independent base samples; 95% CI: bootstrap over seeds and problems")


def _rounded(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def section(groups: Sequence[tuple[str, str, Sequence[Any]]]) -> dict[str, Any] | None:
    """summary.json's `mechanism`: one entry per (strategy, task) whose records carry step-0 histograms; an
    arm beside the paper's baseline on its task also gets `slope_vs`: its slope minus the baseline's, with CI
    (`slope_difference`: do base-pool demos, a frozen teacher, RL amplify less than student demos?)."""
    measured = [(strategy, task, measure_arm(records, keep_sums=True) if records else None)
                for strategy, task, records in groups]
    baseline = {task: m["sums"] for strategy, task, m in measured if m is not None and strategy == PAPER_BASELINE}
    arms = []
    for strategy, task, m in measured:
        if m is None:
            continue
        sums = m.pop("sums")
        arm = {"strategy": strategy, "task": task, **_rounded(m)}
        diff = slope_difference(sums, baseline.get(task)) if strategy != PAPER_BASELINE else None
        if diff is not None:
            arm["slope_vs"] = {"strategy": PAPER_BASELINE, **_rounded(diff)}
        arms.append(arm)
    return {"definition": DEFINITION, "arms": arms} if arms else None


def arms_of(summary: Any, task: str) -> list[dict[str, Any]]:
    mech = getattr(summary, "mechanism", None) or {}
    return [a for a in mech.get("arms", []) if a["task"] == task]


def _at(arm: dict[str, Any], step: int | None, key: str) -> dict[str, float] | None:
    rows = arm["steps"] if step is None else [r for r in arm["steps"] if r["step"] == step]
    return rows[-1][key] if rows else None


def table(summary: Any, task: str) -> tuple[list[str], list[list[str]]]:
    header = ["strategy", "slope [95% CI]", f"slope − {PAPER_BASELINE}'s", "base-vs-base null",
              "dominant share step 0", "dominant share final",
              "eff. classes step 0", "eff. classes final", "demo same-class rate", "demo share vs gain (partial r)"]
    rows = []
    for arm in arms_of(summary, task):
        demo = arm.get("demo") or {}
        r = demo.get("partial_r")
        rows.append([arm["strategy"], fmt(arm["slope"]), fmt(arm.get("slope_vs")), fmt(arm["null_slope"]),
                     fmt(_at(arm, 0, "dominant_share")), fmt(_at(arm, None, "dominant_share")),
                     fmt(_at(arm, 0, "effective_classes"), 2), fmt(_at(arm, None, "effective_classes"), 2),
                     "-" if "same_class_rate" not in demo else f"{demo['same_class_rate']:.3f}",
                     "-" if r is None else f"{r:.3f} ({demo['classes']} classes)"])
    return header, rows


def markdown_lines(summary: Any) -> list[str]:
    """summary.md's mechanism section (empty list: nothing measured)."""
    mech = getattr(summary, "mechanism", None)
    if not mech:
        return []
    out = ["", "## Mechanism: mode amplification (val split)", "", mech["definition"] + ".", ""]
    for task in sorted({a["task"] for a in mech["arms"]}):
        header, rows = table(summary, task)
        out += [f"### {task}", "", *md_table(header, rows), ""]
    return out
