"""Render a schema-2 summary for people: rich tables for the terminal and summary.md.

    from sdbench.runs.report import markdown, rich_tables
    for table in rich_tables(summary):        # summary: sdbench.results.record.Summary
        console.print(table)
    Path("summary.md").write_text(markdown(summary))

The terminal shows, per task, one row per strategy at the best-val checkpoint with the final
checkpoint's pass@1 beside it. summary.md holds both checkpoints' tables with their 95% CIs, the
paired deltas, the frontier (pass@1 and distinct correct at matched KL from base) and the per-stage
timing. The tables and cell formats are `sdbench.presentation`'s, shared with the run's report.html and
the leaderboard. Strategy labels are never cut.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from sdbench.presentation.tables import (
    checkpoint_table,
    frontier_table,
    n_seeds_of,
    rows_by_key,
    strategies_of,
    tasks_of,
    timing_table,
)
from sdbench.presentation.text import (
    CHECKPOINT_TITLES,
    MAIN_SPLIT,
    OOD_SPLIT,
    below_n,
    below_n_stat,
    checkpoint_caption,
    compact,
    fmt,
    md_table,
    metric,
    step_short,
)
from sdbench.results.record import CHECKPOINTS, Summary
from sdbench.runs.compare import PINNED_WHY

# (title of the table, split, checkpoint, columns); "{k}" is the main row's k below n
TERMINAL = (
    ("test, final step", MAIN_SPLIT, "final", (("pass@1", "pass@1"), ("pass@{k}", "pass@{k}"),
                                               ("distinct", "distinct_correct"))),
    ("test, best-val step (chosen on val)", MAIN_SPLIT, "best_val",
     (("pass@1", "pass@1"), ("pass@{k}", "pass@{k}"), ("distinct", "distinct_correct"))),
    ("ood, final step", OOD_SPLIT, "final", (("pass@1", "pass@1"), ("pass@{k}", "pass@{k}"),
                                             ("distinct", "distinct_correct"))),
)


def rich_tables(summary: Summary) -> list[Table]:
    """Per task, small tables of one line per strategy that fit 80 columns (piped output included): test at
    the final step, test at the best-val step (with the step), ood at the final step; cells '0.29 ±0.03'
    (mean ± half-width of the seed-aware 95% CI). Failed cells in red in the first table."""
    rows = rows_by_key(summary)
    tables = []
    for task in tasks_of(summary):
        strategies = [s for s in strategies_of(summary, task)
                      if any((task, s, sp, c) in rows for sp in (MAIN_SPLIT, OOD_SPLIT) for c in CHECKPOINTS)]
        fails = [f for f in summary.failed if str(f.get("task", "?")) == task]
        failed_labels = [f"{f.get('strategy', '?')} (seed {f.get('seed', '?')})" for f in fails]
        seeds = {s: n_seeds_of(summary, task, s) for s in strategies}
        n = f", {sorted(set(seeds.values()))[0]} seeds" if len(set(seeds.values())) == 1 else ""
        if not strategies:
            table = Table(title=Text(f"{task}: no finished cells"), title_justify="left", show_edge=False)
            table.add_column("strategy", no_wrap=True)
            table.add_column("failure")
            for fail, label in zip(fails, failed_labels, strict=True):
                table.add_row(Text(label), Text(f"FAILED ({fail.get('phase', '?')}): {fail.get('reason', '')}"),
                              style="red")
            tables.append(table)
            continue
        first = True
        for title, split, checkpoint, cols in TERMINAL:
            chosen = {s: rows.get((task, s, split, checkpoint)) for s in strategies}
            if not any(chosen.values()):
                continue
            main = next((r for r in chosen.values() if r is not None), None)
            k = below_n(main).removeprefix("pass@")
            what = f"{task}: {title}{n}" + (", mean ±95% CI" if first else "")
            table = Table(title=Text(what), title_justify="left", show_edge=False, pad_edge=False)
            # the label is never cut (one line, its full width)
            table.add_column("strategy", no_wrap=True, min_width=max(map(len, strategies + failed_labels)))
            if len(set(seeds.values())) > 1:
                table.add_column("seeds", justify="right", no_wrap=True)
            cols = tuple(c for c in cols if not (k == "1" and c[1] == "pass@{k}"))   # n < 8: no k below n but 1
            for head, _ in cols:
                table.add_column(head.format(k=k), justify="right", no_wrap=True)
            if checkpoint == "best_val":
                table.add_column("step", justify="right", no_wrap=True)
            for strategy, row in chosen.items():
                cells = [compact(metric(row, name.format(k=k))) for _, name in cols]
                step = [step_short(row.selected_step if row else None)] if checkpoint == "best_val" else []
                extra = [str(seeds[strategy] or "-")] if len(set(seeds.values())) > 1 else []
                table.add_row(Text(strategy), *extra, *cells, *step)
            if first:
                for fail, label in zip(fails, failed_labels, strict=True):
                    table.add_row(Text(label), *([""] if len(set(seeds.values())) > 1 else []),
                                  Text(f"FAILED ({fail.get('phase', '?')}): {fail.get('reason', '')}"),
                                  style="red")
            first = False
            tables.append(table)
    return tables


# --- summary.md ------------------------------------------------------------------------------------

def markdown(summary: Summary, title: str = "sdbench summary") -> str:
    """summary.md: comparisons at matched budgets first (final step, matched KL, matched val pass@1), then
    best-val, the checkpoint rule's stability, the frontier and the timing."""
    lines = [f"# {title}", "", "Mean over seeds and problems, with seed-aware 95% CIs (training seeds resampled within "
             "each arm, problems jointly across the arms of a paired comparison; `sdbench.eval.intervals`). "
             "\"seed SD / share\": the SD of the seed means and the share of the mean's variance between seeds. "
             "\"any correct of n\" is pass@n at n samples."]
    order = ("final", "best_val")
    for checkpoint in order[:1]:
        header, rows = checkpoint_table(summary, checkpoint)
        if rows:
            lines += ["", f"## {CHECKPOINT_TITLES[checkpoint]}", "", f"Test and ood at the "
                      f"{checkpoint_caption(checkpoint)}.", "",
                      *md_table(header, rows)]
    deltas = sorted(summary.deltas, key=lambda d: (d.checkpoint != "final", d.baseline, d.task, d.split))
    if deltas:
        lines += ["", "## Paired deltas", "", "Strategy minus baseline on the same problems; final step first.", "",
                  *md_table(["checkpoint", "task", "split", "strategy", "baseline", "Δ pass@1", "Δ pass@k (n/4)",
                             "Δ distinct_correct"],
                            [[d.checkpoint, d.task, d.split, d.strategy, d.baseline, fmt(d.metrics.get("pass@1")),
                              fmt(below_n_stat(d.metrics)), fmt(d.metrics.get("distinct_correct"))] for d in deltas])]
    for match, title_text, what in (("kl_from_base", "At matched KL from base", "KL"),
                                    ("pass@1", "At matched val pass@1 (iso-accuracy)", "pass@1")):
        matched = [m for m in summary.matched_deltas if m.match == match]
        if matched:
            lines += ["", f"## {title_text}", "", f"Val, paired on the val problems, both arms interpolated where "
                      f"each seed reaches the {what} level (seeds that reach it: strategy / baseline).", "",
                      *md_table(["task", "level", "strategy", "baseline", "seeds", "Δ distinct_correct",
                                 "Δ pass@1" if match != "pass@1" else "Δ kl_from_base", "Δ pass@k (n/4)"],
                                [[m.task, f"{m.level:g}", m.strategy, m.baseline,
                                  f"{m.n_seeds} / {m.n_seeds_baseline}", fmt(m.metrics.get("distinct_correct")),
                                  fmt(m.metrics.get("pass@1" if match != "pass@1" else "kl_from_base")),
                                  fmt(below_n_stat(m.metrics))] for m in matched])]
    header, rows = checkpoint_table(summary, "best_val")
    if rows:
        lines += ["", f"## {CHECKPOINT_TITLES['best_val']}", "", f"Test and ood at the "
                  f"{checkpoint_caption('best_val')}.", "",
                  *md_table(header, rows)]
    if summary.checkpoint_rules:
        pinned = next((r for r in summary.checkpoint_rules if r.chosen), None)
        rule = (f"The best-val rows use {pinned.rule}, pinned for every task ({PINNED_WHY}); here "
                f"{pinned.agreement:.1%} of {pinned.n_pairs} split pairs agree on it." if pinned else "")
        lines += ["", "## Checkpoint rule", "",
                  "Two random halves of the val problems each choose a step; they agree when the two steps' val "
                  "pass@1 differ by at most one standard error. Val only; test and ood are never looked at. "
                  + rule, "",
                  *md_table(["rule", "agreement", "split pairs"],
                            [[r.rule + (" (pinned)" if r.chosen else ""), f"{r.agreement:.1%}", str(r.n_pairs)]
                             for r in summary.checkpoint_rules])]
    if summary.frontier:
        lines += ["", "## Frontier: at matched KL from base", "",
                  "Val pass@1 / distinct correct where each seed's trajectory reaches the KL budget (nats/token, "
                  "linear interpolation in kl_from_base), over the seeds that reach it."]
        for task in tasks_of(summary):
            header, rows = frontier_table(summary, task)
            if rows:
                lines += ["", f"### {task}", "", *md_table(header, rows)]
    from sdbench.runs.mechanism_report import markdown_lines  # issue 29: the mechanism section, when measured

    lines += markdown_lines(summary)
    if summary.timing:
        header, rows = timing_table(summary)
        lines += ["", "## Timing", "", "Seconds per stage, summed over cells.", "", *md_table(header, rows)]
    return "\n".join(lines) + "\n"
