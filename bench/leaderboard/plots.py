"""Leaderboard plots as deterministic SVG text: pass@k curves and the pass@1-vs-diversity Pareto scatter.

    from sdbench.leaderboard.plots import curves_svg, pareto_svg, pareto_front
    svg = curves_svg("graph_paths", entries)      # one line per entry, 95% CI band, log2 k axis

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
