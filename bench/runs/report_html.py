"""A run's report.html: one self-contained page (inline CSS and SVG, no script, no network) per run directory.

    from sdbench.runs.report_html import write_report
    path = write_report(run_dir, summary)     # summary: sdbench.results.record.Summary -> run_dir/report.html

Per task: one figure of four panels — val pass@1, distinct correct and KL from base against step (one
line per strategy, 95% CI bands over seeds), and pass@1 against distinct correct along each
strategy's trajectory — then the frontier table (val pass@1 / distinct correct at matched KL from
base), the best-val and final tables with CIs; at the end the failed cells and the per-stage timing.
The page is a pure function of the summary (deterministic SVG, fixed order): the same summary gives
the same bytes. Plots, page frame and table formats are `sdbench.presentation`'s, shared with the
leaderboard and summary.md.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from sdbench.presentation.html import document, figure, static_table
from sdbench.presentation.plots import mechanism_svg, trajectories_svg
from sdbench.presentation.tables import checkpoint_table, frontier_table, tasks_of, timing_table, trajectory_series
from sdbench.presentation.text import NOT_MEASURED, checkpoint_caption, slug
from sdbench.results.record import CHECKPOINTS, Summary

REPORT = "report.html"
TRAJECTORY_CAPTION = ("Val split along training, one line per strategy, 95% CI bands over seeds: pass@1, distinct "
                      "correct solutions per problem and KL(policy || base) in nats/token against step; pass@1 "
                      "against distinct correct along each trajectory (hollow marker: step 0). A strategy that does "
                      "not train is a dashed line.")


def _section(summary: Summary, task: str) -> str:
    s = slug(task)
    parts = [f'<section id="task-{escape(s)}"><h2>{escape(task)}</h2>']
    parts.append('<div class="plots">' + figure(trajectories_svg(task, trajectory_series(summary, task)),
                                                "trajectories", f"trajectories-{s}", TRAJECTORY_CAPTION, wide=True)
                 + "</div>")
    header, rows = frontier_table(summary, task)
    if rows:
        parts.append("<h3>frontier: val pass@1 / distinct correct at matched KL from base</h3>"
                     + static_table(header, rows, table_id=f"frontier-{s}", cls="frontier"))
    else:
        parts.append('<p class="note">No frontier: no strategy of this task has a val trajectory.</p>')
    from sdbench.runs import mechanism_report  # issue 29: dominant share / effective classes / slope per arm

    arms = mechanism_report.arms_of(summary, task)
    if arms:
        header, rows = mechanism_report.table(summary, task)
        parts.append("<h3>mechanism: mode amplification on val</h3>"
                     + '<div class="plots">' + figure(mechanism_svg(task, arms), "mechanism",
                                                      f"mechanism-{s}", mechanism_report.DEFINITION, wide=True)
                     + "</div>"
                     + static_table(header, rows, table_id=f"mechanism-{s}", cls="mechanism", text_columns=1))
    else:
        parts.append(f'<p class="note">mechanism: {NOT_MEASURED} (no class histograms).</p>')
    for checkpoint in CHECKPOINTS:
        header, rows = checkpoint_table(summary, checkpoint, task)
        if rows:
            parts.append(f"<h3>{checkpoint_caption(checkpoint)}</h3>"
                         + static_table(header, rows, table_id=f"table-{s}-{checkpoint}",
                                        cls=f"checkpoint {checkpoint}", text_columns=2))
    return "".join(parts) + "</section>"


def render(summary: Summary, title: str = "sdbench run report") -> str:
    """The report page's HTML text."""
    tasks = tasks_of(summary)
    nav = " ".join(f'<a href="#task-{escape(slug(t))}">{escape(t)}</a>' for t in tasks)
    body = [f"<nav>{nav}</nav>", *(_section(summary, t) for t in tasks)]
    if not tasks:
        body.append('<p class="note">This summary has no results.</p>')
    if summary.timing:
        header, rows = timing_table(summary)
        body.append("<h2>timing</h2>" + static_table(header, rows, table_id="timing", cls="timing"))
    lead = ("Means over seeds and problems with seed-aware 95% CIs (seeds resampled within each arm, problems "
            "jointly). The frontier compares strategies "
            "at the same KL from the base model: each seed's val trajectory interpolated at the budget "
            "(nats/token), over the seeds that reach it.")
    if summary.config_hash:
        lead += f" Config hash <code>{escape(summary.config_hash)}</code>."
    return document(title, lead, "\n".join(body))


def write_report(run_dir: Path, summary: Summary) -> Path:
    """Write run_dir/report.html atomically; returns its path."""
    from sdbench.atomic import atomic_write_bytes

    path = run_dir / REPORT
    atomic_write_bytes(path, render(summary).encode())
    return path
