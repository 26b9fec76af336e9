"""Every sdbench plot as deterministic SVG text: pass@k curves, the pass@1-vs-diversity Pareto scatter and the
training trajectories, and the mechanism's mode amplification. The one home of plotting for the leaderboard site
and a run's report.html.

    from sdbench.presentation.plots import curves_svg, pareto_svg, pareto_front, trajectories_svg
    svg = curves_svg("graph_paths", entries)      # one line per entry, 95% CI band, log2 k axis
    svg = trajectories_svg("graph_paths", series) # val pass@1 / distinct / KL vs step, pass@1 vs distinct

Determinism: a fixed svg.hashsalt (clip-path ids), no Date metadata, a fixed Creator, text kept as
text (no font-dependent glyph paths), and entries drawn in a fixed order — so the same results give
byte-identical SVG on the same matplotlib version. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

RC = {
    "svg.hashsalt": "sdbench-leaderboard",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
METADATA = {"Date": None, "Creator": "sdbench leaderboard"}
LABEL_FONT = 7.0   # points: the scatter's point labels


def _safe(text: str) -> str:
    # `$` would start matplotlib mathtext: labels come from submitted results, draw them verbatim
    return text.replace("$", r"\$")


def colors(labels: Sequence[str]) -> dict[str, str]:
    """A fixed color per label (sorted, tab10 then tab20's light shades), shared by every plot of a task.

    20 labels get 20 distinct colors; tab20's dark shades are tab10's own, so they are skipped.
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    palette = [to_hex(c) for c in colormaps["tab10"].colors] + [to_hex(c) for c in colormaps["tab20"].colors[1::2]]
    return {label: palette[i % len(palette)] for i, label in enumerate(sorted(set(labels)))}


def _to_svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=METADATA, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def curves_svg(task: str, entries: Sequence[dict[str, Any]]) -> str:
    """pass@k against k (log2 axis) for each entry: {'label', 'curve': [(k, {mean, ci_low, ci_high})]}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(RC):
        fig, ax = plt.subplots(figsize=(5.0, 4.3))
        palette = colors([e["label"] for e in entries])
        all_k: set[int] = set()
        for entry in entries:
            ks = [k for k, _ in entry["curve"]]
            all_k.update(ks)
            mean = [s["mean"] for _, s in entry["curve"]]
            color = palette[entry["label"]]
            ax.fill_between(ks, [s["ci_low"] for _, s in entry["curve"]], [s["ci_high"] for _, s in entry["curve"]],
                            color=color, alpha=0.15, linewidth=0)
            ax.plot(ks, mean, marker="o", markersize=3.5, color=color, label=_safe(entry["label"]))
        ax.set_xscale("log", base=2)
        if all_k:
            ax.set_xticks(sorted(all_k), [str(k) for k in sorted(all_k)])
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("k (samples per problem, log2 scale)")
        ax.set_ylabel("pass@k")
        ax.set_title(_safe(f"{task}: pass@k (mean, 95% CI band)"))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, frameon=False)
        return _to_svg(fig)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher is better on both)."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(ox >= x and oy >= y and (ox > x or oy > y) for j, (ox, oy) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


def label_offsets(anchors: Sequence[tuple[float, float]], widths: Sequence[float], height: float,
                  gap: float = 1.0) -> list[tuple[float, float]]:
    """Offsets (points) that keep point labels from overlapping: each label sits up-right of its
    point and steps down, one line at a time, while it would cover a label placed before it.

    anchors are the points' positions in points (display units); labels are placed top point first,
    so coincident points (collapsed strategies often share a spot) get a readable column of names.
    """
    placed: list[tuple[float, float, float, float]] = []
    offsets = [(5.0, 4.0)] * len(anchors)
    for i in sorted(range(len(anchors)), key=lambda i: (-anchors[i][1], anchors[i][0])):
        (x, y), dx, dy = anchors[i], 5.0, 4.0
        for _ in range(len(anchors)):
            box = (x + dx, y + dy, x + dx + widths[i], y + dy + height)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
            dy -= height + gap
        placed.append(box)
        offsets[i] = (dx, dy)
    return offsets


def pareto_svg(task: str, entries: Sequence[dict[str, Any]]) -> str:
    """pass@1 (y) against distinct correct solutions (x) with CIs; the Pareto front is marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        palette = colors([e["label"] for e in entries])
        points = [(e["diversity"]["mean"], e["pass1"]["mean"]) for e in entries]
        front = set(pareto_front(points))
        for i, entry in enumerate(entries):
            x, y = points[i]
            dx, dy = entry["diversity"], entry["pass1"]
            ax.errorbar([x], [y], xerr=[[x - dx["ci_low"]], [dx["ci_high"] - x]],
                        yerr=[[y - dy["ci_low"]], [dy["ci_high"] - y]], fmt="o", markersize=6,
                        color=palette[entry["label"]], ecolor=palette[entry["label"]], elinewidth=0.8,
                        capsize=2, markeredgecolor="black" if i in front else palette[entry["label"]],
                        markeredgewidth=1.4 if i in front else 0.5)
        ax.autoscale_view()   # final limits first: label placement works in display units
        to_points = 72.0 / fig.dpi
        anchors = [tuple(float(v) * to_points for v in ax.transData.transform(point)) for point in points]
        widths = [LABEL_FONT * 0.6 * len(entry["label"]) for entry in entries]   # DejaVu Sans averages ~0.6 em
        for entry, point, offset in zip(entries, points, label_offsets(anchors, widths, LABEL_FONT), strict=True):
            ax.annotate(_safe(entry["label"]), point, textcoords="offset points", xytext=offset, fontsize=LABEL_FONT)
        if front:
            ordered = sorted((points[i] for i in front), key=lambda p: (p[0], -p[1]))
            xs, ys = zip(*ordered, strict=True)
            # where="pre": the boundary of the dominated region drops at a front point, then runs right
            ax.step(xs, ys, where="pre", color="black", linestyle="--", linewidth=0.9, label="Pareto front")
        ax.set_xlabel("distinct correct solutions per problem (diversity)")
        ax.set_ylabel("pass@1")
        ax.set_title(_safe(f"{task}: pass@1 vs diversity (Pareto front dashed, outlined)"))
        if front:   # points are labelled in place; the legend only explains the front
            ax.legend(loc="lower right", fontsize=7, frameon=False)
        return _to_svg(fig)


TRAJECTORY_PANELS = (("pass@1", "val pass@1"), ("distinct_correct", "val distinct correct / problem"),
                     ("kl_from_base", "KL(policy || base), nats/token"))


def trajectories_svg(task: str, series: Sequence[dict[str, Any]]) -> str:
    """Four panels of val metrics along training, one line per series, 95% CI bands over seeds:
    pass@1, distinct correct and KL from base against step, and pass@1 against distinct correct.

    series: {'label', 'points': [(step, {'pass@1' | 'distinct_correct' | 'kl_from_base': {mean, ci_low,
    ci_high}})]}, points sorted by step. A series with a single point (an untrained `base`) is a dashed
    reference line on the step panels. Labels are drawn in full in a legend below the panels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(2, 2, figsize=(9.0, 6.6))
        palette = colors([s["label"] for s in series])
        panels = list(axes.flat)
        for ax, (metric, ylabel) in zip(panels[:3], TRAJECTORY_PANELS, strict=True):
            for entry in series:
                points = [(step, m[metric]) for step, m in entry["points"] if metric in m]
                if not points:
                    continue
                color, label = palette[entry["label"]], _safe(entry["label"])
                steps = [step for step, _ in points]
                if len(points) == 1:
                    ax.axhline(points[0][1]["mean"], color=color, linestyle="--", linewidth=1.0, label=label)
                    continue
                ax.fill_between(steps, [s["ci_low"] for _, s in points], [s["ci_high"] for _, s in points],
                                color=color, alpha=0.15, linewidth=0)
                ax.plot(steps, [s["mean"] for _, s in points], marker="o", markersize=2.5, color=color, label=label)
            ax.set_xlabel("training step")
            ax.set_ylabel(ylabel)
        path = panels[3]
        for entry in series:
            points = [m for _, m in entry["points"] if "pass@1" in m and "distinct_correct" in m]
            if not points:
                continue
            xs, ys = [m["distinct_correct"]["mean"] for m in points], [m["pass@1"]["mean"] for m in points]
            color = palette[entry["label"]]
            path.plot(xs, ys, marker="o", markersize=2.5, color=color, linewidth=1.0)
            path.plot(xs[:1], ys[:1], marker="o", markersize=6, markerfacecolor="white", markeredgecolor=color,
                      linestyle="none")
        path.set_xlabel("val distinct correct / problem")
        path.set_ylabel("val pass@1")
        path.set_title("along training (hollow: step 0)", fontsize=8.5)
        fig.suptitle(_safe(f"{task}: val along training (mean, 95% CI band over seeds)"))
        handles, labels = panels[0].get_legend_handles_labels()
        fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.97))
        if handles:
            fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(3, len(handles)),
                       fontsize=7.5, frameon=False)
        return _to_svg(fig)


_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_ID = re.compile(r'\bid="([^"]+)"')
_URL = re.compile(r"url\(#([^)]+)\)")
_HREF = re.compile(r'(xlink:href|href)="#([^"]+)"')


def inline_svg(svg: str, prefix: str) -> str:
    """The <svg> element alone, ids prefixed so that several plots can share one HTML page."""
    start = svg.index("<svg")
    body = _METADATA.sub("", svg[start:].strip())   # RDF metadata means nothing inside a page
    body = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', body)
    body = _URL.sub(lambda m: f"url(#{prefix}-{m.group(1)})", body)
    return _HREF.sub(lambda m: f'{m.group(1)}="#{prefix}-{m.group(2)}"', body)


# the mechanism figure's own salt and style (its ids must not collide with the trajectories' on one page)
MECHANISM_RC = {"svg.hashsalt": "sdbench-mechanism", "svg.fonttype": "none", "font.family": "DejaVu Sans",
                "font.size": 9.0, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                "axes.spines.right": False}


def mechanism_svg(task: str, arms: Sequence[dict[str, Any]]) -> str:
    """Mode amplification (the arms of `sdbench.runs.mechanism_report.arms_of`), three panels: dominant share
    and effective classes against step (95% CI bands), the slope per arm with its CI beside the base-vs-base
    null (grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sdbench.presentation.text import NOT_MEASURED

    with matplotlib.rc_context(MECHANISM_RC):
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
