"""The mechanism section of a run's summary, summary.md, report.html and the leaderboard (issue 29).

    from sdbench.runs.mechanism_report import section, markdown_lines, table, svg
    summary.mechanism = section([(label, task, records), ...])      # summary.json's `mechanism`
    markdown_lines(summary)                                          # summary.md's "## Mechanism"
    header, rows = table(summary, task); svg(task, arms_of(summary, task))   # report.html, leaderboard

The numbers come from `sdbench.eval.mechanism.measure_arm` (its docstring defines them); this module only
arranges them. A summary without the section (schema 2, or records without class histograms) shows
"not measured". Plots are deterministic SVG (fixed hash salt, no dates, text as text), as the leaderboard's.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from sdbench.eval.mechanism import measure_arm

NOT_MEASURED = "not measured"
DEFINITION = ("dominant share: share of correct samples in the base's most frequent correct class (chosen on the "
              "other seeds' step-0 samples); effective classes: exp(entropy) of the correct-class distribution; "
              "slope b of log(s_t/s_0) on log s_0 over the base's correct classes with problem fixed effects "
              "(step 0 split in halves: x from one, the baseline from the other; Jeffreys +1/2; problems with >= 2 "
              "base classes and >= 2 correct samples): b > 0 large modes grow (the SD fixed point "
              "pi* ∝ pi·exp(E_c[pmi(y;c|x)])), b = 0 ratios kept (KL-regularized RL, pi* ∝ pi·exp(r/beta)); "
              "null: the same estimator on two independent base samples; 95% CI: bootstrap over seeds and problems")
RC = {"svg.hashsalt": "sdbench-mechanism", "svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 9.0,
      "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}


def _rounded(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def section(groups: Sequence[tuple[str, str, Sequence[Any]]]) -> dict[str, Any] | None:
    """summary.json's `mechanism`: one entry per (strategy, task) whose records carry step-0 histograms."""
    arms = []
    for strategy, task, records in groups:
        measured = measure_arm(records) if records else None
        if measured is not None:
            arms.append({"strategy": strategy, "task": task, **_rounded(measured)})
    return {"definition": DEFINITION, "arms": arms} if arms else None


def arms_of(summary: Any, task: str) -> list[dict[str, Any]]:
    mech = getattr(summary, "mechanism", None) or {}
    return [a for a in mech.get("arms", []) if a["task"] == task]


def _fmt(stat: dict[str, float] | None, digits: int = 3) -> str:
    if not stat:
        return "-"
    return f"{stat['mean']:.{digits}f} [{stat['ci_low']:.{digits}f}, {stat['ci_high']:.{digits}f}]"


def _at(arm: dict[str, Any], step: int | None, key: str) -> dict[str, float] | None:
    rows = arm["steps"] if step is None else [r for r in arm["steps"] if r["step"] == step]
    return rows[-1][key] if rows else None


def table(summary: Any, task: str) -> tuple[list[str], list[list[str]]]:
    header = ["strategy", "slope [95% CI]", "base-vs-base null", "dominant share step 0", "dominant share final",
              "eff. classes step 0", "eff. classes final", "demo same-class rate", "demo share vs gain (partial r)"]
    rows = []
    for arm in arms_of(summary, task):
        demo = arm.get("demo") or {}
        r = demo.get("partial_r")
        rows.append([arm["strategy"], _fmt(arm["slope"]), _fmt(arm["null_slope"]),
                     _fmt(_at(arm, 0, "dominant_share")), _fmt(_at(arm, None, "dominant_share")),
                     _fmt(_at(arm, 0, "effective_classes"), 2), _fmt(_at(arm, None, "effective_classes"), 2),
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
        out += [f"### {task}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        out.append("")
    return out


def svg(task: str, arms: Sequence[dict[str, Any]]) -> str:
    """Three panels: dominant share and effective classes against step (95% CI bands), the slope per arm
    with its CI beside the base-vs-base null (grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.4))
        palette = plt.get_cmap("tab10")
        for i, arm in enumerate(arms):
            color = palette(i % 10)
            for ax, key in zip(axes[:2], ("dominant_share", "effective_classes"), strict=True):
                pts = [(r["step"], r[key]) for r in arm["steps"] if r[key]]
                steps = [s for s, _ in pts]
                if len(pts) == 1:
                    ax.axhline(pts[0][1]["mean"], color=color, linestyle="--", linewidth=1.0)
                    continue
                ax.fill_between(steps, [p["ci_low"] for _, p in pts], [p["ci_high"] for _, p in pts], color=color,
                                alpha=0.15, linewidth=0)
                ax.plot(steps, [p["mean"] for _, p in pts], marker="o", markersize=2.5, color=color,
                        label=arm["strategy"].replace("$", r"\$"))
            for offset, stat, c in ((-0.15, arm["null_slope"], "0.6"), (0.15, arm["slope"], color)):
                if stat:
                    axes[2].errorbar([i + offset], [stat["mean"]], yerr=[[stat["mean"] - stat["ci_low"]],
                                                                        [stat["ci_high"] - stat["mean"]]],
                                     fmt="o", color=c, markersize=4, capsize=2)
        axes[0].set_ylabel("dominant-class share")
        axes[1].set_ylabel("effective correct classes")
        for ax in axes[:2]:
            ax.set_xlabel("training step")
        axes[2].axhline(0.0, color="k", linewidth=0.8)
        axes[2].set_xticks(range(len(arms)), [a["strategy"].replace("$", r"\$") for a in arms], rotation=30,
                           ha="right", fontsize=7)
        axes[2].set_ylabel("amplification slope (grey: base-vs-base)")
        if not arms:
            for ax in axes:
                ax.text(0.5, 0.5, NOT_MEASURED, transform=ax.transAxes, ha="center", va="center")
        fig.suptitle(f"{task}: mode amplification on val (mean, 95% CI over seeds and problems)".replace("$", r"\$"))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.95))
        if handles:
            fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(3, len(handles)),
                       fontsize=7.5, frameon=False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "sdbench"}, bbox_inches="tight")
        plt.close(fig)
        return buf.getvalue()
