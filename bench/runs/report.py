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
CHECKPOINT_COLUMNS = (("pass@1", "pass@1"), ("pass@k (k = n/4)", "pass@{kq}"), ("any correct of k_max", "pass@{kmax}"),
                      ("pass@auc", "pass@auc"), ("pass@gain", "pass@gain"), ("distinct_correct", "distinct_correct"),
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
    """The row's stat; "{kmax}" is its n, "{kq}" its k below n (n/4), "{k}" the same."""
    if row is None:
        return None
    kq = max(kmax(row) // 4, 1)
    return row.metrics.get(name.format(kmax=kmax(row), kq=kq, k=kq))


def seed_text(stat: Stat | None) -> str:
    """'0.031 / 72%': SD of the seed means and the share of the mean's variance between seeds ('–' at one seed)."""
    if stat is None or stat.seed_sd is None or stat.seed_share is None:
        return "–"
    return f"{stat.seed_sd:.3f} / {stat.seed_share:.0%}"


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
    header += ["pass@1 seed SD / share", "distinct seed SD / share"]
    rows = []
    for row in chosen:
        step = [step_text(row.selected_step)] if checkpoint == "best_val" else []
        rows.append([*([] if task else [row.task]), row.split, row.strategy, str(row.n_seeds), *step,
                     *(fmt(metric(row, m)) for _, m in CHECKPOINT_COLUMNS),
                     seed_text(metric(row, "pass@1")), seed_text(metric(row, "distinct_correct"))])
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


# --- terminal ---------------------------------------------------------------------------------------

def compact(stat: Stat | None) -> str:
    """'0.29 ±0.03': mean and half the CI width, two decimals (10 characters for values below 10)."""
    return "-" if stat is None else f"{stat.mean:.2f} ±{(stat.ci_high - stat.ci_low) / 2:.2f}"


def below_n(row: SummaryRow | None) -> str:
    """The row's pass@k below n (k = n/4: pass@16 at n = 64), never pass@n ('any correct of n')."""
    return f"pass@{max(kmax(row) // 4, 1)}" if row is not None else "pass@1"


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


def _below_n(metrics: dict[str, Stat]) -> Stat | None:
    """pass@k with the largest k below the largest n in `metrics` that is n/4 (pass@16 of 64, pass@4 of 16)."""
    ks = sorted(int(m[5:]) for m in metrics if m.startswith("pass@") and m[5:].isdigit())
    return metrics.get(f"pass@{ks[-1] // 4}") if ks and ks[-1] >= 8 else None   # n < 8: no k in 2..n-1 at n/4


def step_short(stat: Stat | None) -> str:
    """The selected step over seeds: '75' when every seed chose it, else its mean '66.7'."""
    if stat is None:
        return "–"
    return f"{stat.mean:g}" if stat.ci_low == stat.ci_high == stat.mean else f"{stat.mean:.1f}"


# --- summary.md ------------------------------------------------------------------------------------

def _esc(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(map(_esc, header)) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(map(_esc, row)) + " |" for row in rows)]


CHECKPOINT_TEXT = {
    "best_val": "the checkpoint with the highest val pass@1 (ties: the earliest step), chosen per seed",
    "final": "after the last training step (a matched budget: every arm trained the same steps)",
}


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
            lines += ["", f"## {checkpoint} checkpoint", "", f"Test and ood at {CHECKPOINT_TEXT[checkpoint]}.", "",
                      *md_table(header, rows)]
    deltas = sorted(summary.deltas, key=lambda d: (d.checkpoint != "final", d.baseline, d.task, d.split))
    if deltas:
        lines += ["", "## Paired deltas", "", "Strategy minus baseline on the same problems; final step first.", "",
                  *md_table(["checkpoint", "task", "split", "strategy", "baseline", "Δ pass@1", "Δ pass@k (n/4)",
                             "Δ distinct_correct"],
                            [[d.checkpoint, d.task, d.split, d.strategy, d.baseline, fmt(d.metrics.get("pass@1")),
                              fmt(_below_n(d.metrics)), fmt(d.metrics.get("distinct_correct"))] for d in deltas])]
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
                                  fmt(_below_n(m.metrics))] for m in matched])]
    header, rows = checkpoint_table(summary, "best_val")
    if rows:
        lines += ["", "## best_val checkpoint", "", f"Test and ood at {CHECKPOINT_TEXT['best_val']}.", "",
                  *md_table(header, rows)]
    if summary.checkpoint_rules:
        chosen = next((r for r in summary.checkpoint_rules if r.chosen), summary.checkpoint_rules[0])
        lines += ["", "## Checkpoint rule", "",
                  "Two random halves of the val problems each choose a step; they agree when the two steps' val "
                  "pass@1 differ by at most one standard error. Val only; test and ood are never looked at. "
                  f"Most stable: {chosen.rule} ({chosen.agreement:.1%} of {chosen.n_pairs} split pairs agree).", "",
                  *md_table(["rule", "agreement", "split pairs"],
                            [[r.rule + (" (chosen)" if r.chosen else ""), f"{r.agreement:.1%}", str(r.n_pairs)]
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
