"""Render a schema-2 summary for people: rich tables for the terminal and summary.md.

    from sdbench.runs.report import markdown, rich_tables
    for table in rich_tables(summary):        # summary: sdbench.runs.record.Summary
        console.print(table)
    Path("summary.md").write_text(markdown(summary))

The terminal shows, per task, one row per strategy at the best-val checkpoint with the final
checkpoint's pass@1 beside it. summary.md holds both checkpoints' tables with their 95% CIs, the
paired deltas, the frontier (pass@1 and distinct correct at matched KL from base) and the per-stage
timing. The table builders here (`checkpoint_table`, `frontier_table`, `timing_table`, the cell
formats) are shared with the run's report.html and the leaderboard. Strategy labels are never cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from sdbench.runs.record import CHECKPOINTS, TIMING_STAGES, Checkpoint, FrontierEntry, Stat, Summary, SummaryRow

MAIN_SPLIT, OOD_SPLIT = "test", "ood"
# (column title, metric): "{kmax}" is the row's samples per problem
CHECKPOINT_COLUMNS = (("pass@1", "pass@1"), ("pass@k_max", "pass@{kmax}"), ("pass@auc", "pass@auc"),
                      ("pass@gain", "pass@gain"), ("distinct_correct", "distinct_correct"),
                      ("semantic_classes", "semantic_classes"), ("entropy", "entropy"))


# --- cell formats ----------------------------------------------------------------------------------

def fmt(stat: Stat | None) -> str:
    """mean [ci_low, ci_high], three decimals."""
    return "–" if stat is None else f"{stat.mean:.3f} [{stat.ci_low:.3f}, {stat.ci_high:.3f}]"


def short(stat: Stat | None) -> str:
    """mean ± half the CI width: compact enough for a terminal; summary.md has the exact bounds."""
    return "-" if stat is None else f"{stat.mean:.2f}±{(stat.ci_high - stat.ci_low) / 2:.2f}"


def step_text(stat: Stat | None) -> str:
    """The selected step over seeds: '75' when every seed chose it, else 'mean [low, high]'."""
    if stat is None:
        return "–"
    if stat.ci_low == stat.ci_high == stat.mean:
        return f"{stat.mean:g}"
    return f"{stat.mean:.1f} [{stat.ci_low:.0f}, {stat.ci_high:.0f}]"


def frontier_cell(entry: FrontierEntry | None, n_seeds: int | None) -> str:
    """'pass@1 / distinct (seeds reached)', e.g. '0.512 / 3.41 (2/3 seeds)'; '–' where no seed reached it."""
    of = f"/{n_seeds}" if n_seeds else ""
    if entry is None:
        return "–"
    reached = f"({entry.n_seeds_reached}{of} seeds)"
    pass1, distinct = entry.metrics.get("pass@1"), entry.metrics.get("distinct_correct")
    if entry.n_seeds_reached == 0 or pass1 is None or distinct is None:
        return f"– {reached}"
    return f"{pass1.mean:.3f} / {distinct.mean:.2f} {reached}"


def kmax(row: SummaryRow) -> int:
    return row.samples_per_problem


def metric(row: SummaryRow | None, name: str) -> Stat | None:
    return None if row is None else row.metrics.get(name.format(kmax=kmax(row)))


# --- what is in a summary --------------------------------------------------------------------------

def tasks_of(summary: Summary) -> list[str]:
    """Tasks in the order the summary first mentions them (rows, then trajectories, frontier, failures)."""
    seen: dict[str, None] = {}
    for item in (*summary.rows, *summary.trajectories, *summary.frontier):
        seen.setdefault(item.task, None)
    for fail in summary.failed:
        seen.setdefault(str(fail.get("task", "?")), None)
    return list(seen)


def strategies_of(summary: Summary, task: str) -> list[str]:
    seen: dict[str, None] = {}
    for item in (*summary.rows, *summary.trajectories, *summary.frontier):
        if item.task == task:
            seen.setdefault(item.strategy, None)
    return list(seen)


def rows_by_key(summary: Summary) -> dict[tuple[str, str, str, Checkpoint], SummaryRow]:
    """(task, strategy, split, checkpoint) -> row."""
    return {(r.task, r.strategy, r.split, r.checkpoint): r for r in summary.rows}


def n_seeds_of(summary: Summary, task: str, strategy: str) -> int | None:
    counts = [r.n_seeds for r in summary.rows if r.task == task and r.strategy == strategy]
    counts += [t.n_seeds for t in summary.trajectories if t.task == task and t.strategy == strategy]
    return max(counts, default=None)


def budgets_of(summary: Summary, task: str) -> list[float]:
    return sorted({f.kl_budget for f in summary.frontier if f.task == task})


def budget_title(budget: float) -> str:
    return f"KL {budget:g}"


def trajectory_series(summary: Summary, task: str, label: Callable[[str], str] = str) -> list[dict[str, Any]]:
    """The task's val trajectories as `sdbench.leaderboard.plots.trajectories_svg` draws them."""
    by_strategy: dict[str, list[tuple[int, dict[str, dict[str, float]]]]] = {}
    for t in summary.trajectories:
        if t.task == task:
            by_strategy.setdefault(t.strategy, []).append((t.step, {k: v.model_dump() for k, v in t.metrics.items()}))
    return [{"label": label(s), "points": sorted(points, key=lambda p: p[0])} for s, points in by_strategy.items()]


def checkpoint_table(summary: Summary, checkpoint: Checkpoint, task: str | None = None,
                     ) -> tuple[list[str], list[list[str]]]:
    """Header and rows ([task,] split, strategy, seeds, [step,] metrics with CIs) of one checkpoint;
    with `task`, that task's rows only and no task column. Failed cells are rows saying so."""
    lead = ["split", "strategy", "seeds", *(["selected step"] if checkpoint == "best_val" else [])]
    chosen = [r for r in summary.rows if r.checkpoint == checkpoint and task in (None, r.task)]
    kmaxes = {kmax(r) for r in chosen}
    header = ([] if task else ["task"]) + lead
    header += [t.replace("k_max", str(next(iter(kmaxes)))) if len(kmaxes) == 1 else t for t, _ in CHECKPOINT_COLUMNS]
    rows = []
    for row in chosen:
        step = [step_text(row.selected_step)] if checkpoint == "best_val" else []
        rows.append([*([] if task else [row.task]), row.split, row.strategy, str(row.n_seeds), *step,
                     *(fmt(metric(row, m)) for _, m in CHECKPOINT_COLUMNS)])
    for fail in summary.failed:
        if task not in (None, str(fail.get("task", "?"))):
            continue
        cells = [*([] if task else [str(fail.get("task", "?"))]), "-", str(fail.get("strategy", "?")),
                 f"seed {fail.get('seed', '?')}", "FAILED: " + str(fail.get("reason", ""))]
        rows.append(cells + [""] * (len(header) - len(cells)))
    return header, rows


def frontier_table(summary: Summary, task: str) -> tuple[list[str], list[list[str]]]:
    """Rows strategy, columns KL budget, cells `frontier_cell`."""
    budgets = budgets_of(summary, task)
    entries = {(f.strategy, f.kl_budget): f for f in summary.frontier if f.task == task}
    rows = []
    for strategy in strategies_of(summary, task):
        if not any((strategy, b) in entries for b in budgets):
            continue
        n_seeds = n_seeds_of(summary, task, strategy)
        rows.append([strategy, *(frontier_cell(entries.get((strategy, b)), n_seeds) for b in budgets)])
    return ["strategy", *(budget_title(b) for b in budgets)], rows


def timing_table(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """Seconds per stage summed over cells, in pipeline order, with each stage's share and the total."""
    stages = [s for s in TIMING_STAGES if s in summary.timing] + sorted(set(summary.timing) - set(TIMING_STAGES))
    total = sum(summary.timing[s] for s in stages)
    rows = [[s.removesuffix("_s"), f"{summary.timing[s]:.1f}", f"{summary.timing[s] / total:.1%}" if total else "–"]
            for s in stages]
    return ["stage", "seconds", "share"], rows + ([["total", f"{total:.1f}", "100.0%"]] if stages else [])


# --- terminal --------------------------------------------------------------------------------------

TERMINAL = (("pass@k", MAIN_SPLIT, "pass@{kmax}"), ("gain", MAIN_SPLIT, "pass@gain"),
            ("distinct", MAIN_SPLIT, "distinct_correct"), ("ood pass@1", OOD_SPLIT, "pass@1"),
            ("ood pass@k", OOD_SPLIT, "pass@{kmax}"))


def rich_tables(summary: Summary) -> list[Table]:
    """One table per task, one row per strategy at the best-val checkpoint (final where a task has no
    best-val rows), the final pass@1 beside the best-val one; failed cells in red. The seed count is in
    the title (a column only where strategies differ in it)."""
    rows = rows_by_key(summary)
    tables = []
    for task in tasks_of(summary):
        strategies = [s for s in strategies_of(summary, task)
                      if any((task, s, sp, c) in rows for sp in (MAIN_SPLIT, OOD_SPLIT) for c in CHECKPOINTS)]
        has_best = any(k[0] == task and k[3] == "best_val" for k in rows)
        shown: Checkpoint = "best_val" if has_best else "final"
        fails = [f for f in summary.failed if str(f.get("task", "?")) == task]
        failed_labels = [f"{f.get('strategy', '?')} (seed {f.get('seed', '?')})" for f in fails]
        seeds = {s: n_seeds_of(summary, task, s) for s in strategies}
        uniform = len(set(seeds.values())) <= 1
        what = ("best-val checkpoint" if has_best else "final checkpoint (no val split: no best-val selection)"
                if strategies else "no finished cells")
        n = f", {next(iter(seeds.values()))} seeds" if uniform and seeds else ""
        table = Table(title=Text(f"{task}: {what}{n}, mean ± half-width of the 95% CI"), title_justify="left",
                      show_edge=False)
        # the label is never cut (one line, its full width); in a narrow terminal numbers wrap, then fold
        table.add_column("strategy", no_wrap=True, min_width=max(map(len, strategies + failed_labels), default=8))
        if not uniform:
            table.add_column("seeds", justify="right", overflow="fold")
        for title in ("pass@1", *(t for t, _, _ in TERMINAL), *(["step"] if has_best else [])):
            table.add_column(title, justify="right", overflow="fold")
        for strategy in strategies:
            main, ood = rows.get((task, strategy, MAIN_SPLIT, shown)), rows.get((task, strategy, OOD_SPLIT, shown))
            final = rows.get((task, strategy, MAIN_SPLIT, "final"))
            pass1 = short(metric(main, "pass@1"))
            if has_best and final is not None:
                pass1 += f" (final {final.metrics['pass@1'].mean:.2f})"
            cells = [short(metric(main if split == MAIN_SPLIT else ood, name)) for _, split, name in TERMINAL]
            any_row = main or ood
            step = [step_text(any_row.selected_step if any_row else None)] if has_best else []
            # Text, not markup: a label like `single_sampled_demo[teacher=live]` is shown as it is
            table.add_row(Text(strategy), *([] if uniform else [str(seeds[strategy] or "-")]), pass1, *cells, *step)
        for fail, label in zip(fails, failed_labels, strict=True):
            table.add_row(Text(label), *([] if uniform else ["-"]),
                          Text(f"FAILED ({fail.get('phase', '?')}): {fail.get('reason', '')}"), style="red")
        tables.append(table)
    return tables


# --- summary.md ------------------------------------------------------------------------------------

def _esc(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(map(_esc, header)) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(map(_esc, row)) + " |" for row in rows)]


CHECKPOINT_TEXT = {
    "best_val": "the checkpoint with the highest val pass@1 (ties: the earliest step), chosen per seed",
    "final": "after the last training step",
}


def markdown(summary: Summary, title: str = "sdbench summary") -> str:
    lines = [f"# {title}", "", "Mean over seeds and problems, with 95% percentile-bootstrap CIs."]
    for checkpoint in CHECKPOINTS:
        header, rows = checkpoint_table(summary, checkpoint)
        if not rows:
            continue
        lines += ["", f"## {checkpoint} checkpoint", "", f"Test and ood at {CHECKPOINT_TEXT[checkpoint]}.", "",
                  *md_table(header, rows)]
    if summary.deltas:
        lines += ["", f"## Paired deltas against {summary.deltas[0].baseline}", "",
                  *md_table(["checkpoint", "task", "split", "strategy", "Δ pass@1", "Δ pass@gain",
                             "Δ distinct_correct"],
                            [[d.checkpoint, d.task, d.split, d.strategy, fmt(d.metrics.get("pass@1")),
                              fmt(d.metrics.get("pass@gain")), fmt(d.metrics.get("distinct_correct"))]
                             for d in summary.deltas])]
    if summary.frontier:
        lines += ["", "## Frontier: at matched KL from base", "",
                  "Val pass@1 / distinct correct where each seed's trajectory reaches the KL budget (nats/token, "
                  "linear interpolation in kl_from_base), over the seeds that reach it."]
        for task in tasks_of(summary):
            header, rows = frontier_table(summary, task)
            if rows:
                lines += ["", f"### {task}", "", *md_table(header, rows)]
    from sdbench.runs.mechanism_report import markdown_lines   # issue 29: the mechanism section, when measured

    lines += markdown_lines(summary)
    if summary.timing:
        header, rows = timing_table(summary)
        lines += ["", "## Timing", "", "Seconds per stage, summed over cells.", "", *md_table(header, rows)]
    return "\n".join(lines) + "\n"
