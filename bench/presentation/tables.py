"""What a summary holds, as table rows: the tables the run report and the leaderboard both show.

    from sdbench.presentation.tables import checkpoint_table, frontier_table, tasks_of
    header, rows = checkpoint_table(summary, "best_val", task="graph_paths")   # cells as sdbench.presentation.text

`checkpoint_table`, `frontier_table` and `timing_table` give (header, rows) of text cells, which
summary.md writes as markdown (`md_table`) and report.html / the leaderboard as HTML
(`sdbench.presentation.html.static_table`). `trajectory_series` is what
`sdbench.presentation.plots.trajectories_svg` draws. The column sets of both pages live here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdbench.presentation.text import budget_title, fmt, frontier_cell, kmax, metric, seed_text, step_text
from sdbench.results.record import TIMING_STAGES, Checkpoint, Summary, SummaryRow

# The run report's checkpoint tables (column title, metric): "{kmax}" is the row's samples per problem, "{kq}" n/4.
CHECKPOINT_COLUMNS = (("pass@1", "pass@1"), ("pass@k (k = n/4)", "pass@{kq}"), ("any correct of k_max", "pass@{kmax}"),
                      ("pass@auc", "pass@auc"), ("pass@gain", "pass@gain"), ("distinct_correct", "distinct_correct"),
                      ("semantic_classes", "semantic_classes"), ("entropy", "entropy"))
# The leaderboard's tables (column title, value key of a `sdbench.leaderboard.views.Entry`: a metric of the main
# split, "pass@kmax" its pass@n, "ood1" / "ood" pass@1 / pass@n of the OOD split, "slope" the amplification slope).
LEADERBOARD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("pass@1", "pass@1"), ("pass@16", "pass@16"), ("any correct of k_max", "pass@kmax"),
    ("pass@auc", "pass@auc"), ("pass@gain", "pass@gain"),
    ("distinct_correct", "distinct_correct"), ("semantic_classes", "semantic_classes"),
    ("ood pass@1", "ood1"), ("ood any correct of k_max", "ood"),
    ("amplification slope", "slope"),   # issue 29: val mode amplification (sdbench.eval.mechanism)
)
STEP_COLUMN = ("selected step", "step")   # best_val tables only


def leaderboard_columns(checkpoint: Checkpoint) -> tuple[tuple[str, str], ...]:
    return LEADERBOARD_COLUMNS + ((STEP_COLUMN,) if checkpoint == "best_val" else ())


def kmax_title(title: str, kmaxes: set[int]) -> str:
    """A column title with "k_max" written as the number when every row has the same n."""
    return title.replace("k_max", str(next(iter(kmaxes)))) if len(kmaxes) == 1 else title


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


def trajectory_series(summary: Summary, task: str, label: Callable[[str], str] = str) -> list[dict[str, Any]]:
    """The task's val trajectories as `sdbench.presentation.plots.trajectories_svg` draws them."""
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
    header += [kmax_title(t, kmaxes) for t, _ in CHECKPOINT_COLUMNS]
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
