"""Render a summary as a rich table (terminal) and as markdown (summary.md): the same columns."""

from __future__ import annotations

from typing import Any

from rich.table import Table

HEADLINE = ("pass@1", "pass@{kmax}", "pass@auc", "pass@gain", "distinct_correct", "semantic_classes", "entropy")


def _cell(stat: dict[str, float] | None) -> str:
    if stat is None:
        return "-"
    return f"{stat['mean']:.3f} [{stat['ci_low']:.3f}, {stat['ci_high']:.3f}]"


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["task", "split", "strategy", "seeds"]
    rows: list[list[str]] = []
    columns: list[str] = []
    for row in summary["rows"]:
        kmax = row["samples_per_problem"]
        names = [c.format(kmax=kmax) for c in HEADLINE]
        if not columns:
            columns = [c.replace(f"@{kmax}", "@k_max") if c == f"pass@{kmax}" else c for c in names]
        rows.append([row["task"], row["split"], row["strategy"], str(row["n_seeds"]),
                     *[_cell(row["metrics"].get(n)) for n in names]])
    for fail in summary.get("failed", []):
        rows.append([fail["task"], "-", fail["strategy"], f"seed {fail['seed']}",
                     "FAILED: " + str(fail.get("reason", "")), *[""] * (len(HEADLINE) - 1)])
    return header + (columns or list(HEADLINE)), rows


TERMINAL = (("test", "pass@1"), ("test", "pass@{kmax}"), ("test", "pass@gain"), ("test", "distinct_correct"),
            ("ood", "pass@1"), ("ood", "pass@{kmax}"))


def _short(stat: dict[str, float] | None) -> str:
    """mean ± half the CI width: compact enough for a terminal; summary.md has the exact bounds."""
    if stat is None:
        return "-"
    return f"{stat['mean']:.2f}±{(stat['ci_high'] - stat['ci_low']) / 2:.2f}"


def rich_tables(summary: dict[str, Any]) -> list[Table]:
    """One table per task, one row per strategy, test and ood side by side; failed cells in red."""
    by_task: dict[str, dict[str, dict[str, dict]]] = {}
    for row in summary["rows"]:
        by_task.setdefault(row["task"], {}).setdefault(row["strategy"], {})[row["split"]] = row
    for fail in summary.get("failed", []):
        by_task.setdefault(fail["task"], {})
    tables = []
    for task, strategies in by_task.items():
        table = Table(title=f"{task}: mean ± half-width of the 95% CI", title_justify="left")
        table.add_column("strategy", no_wrap=True)
        table.add_column("seeds", justify="right", no_wrap=True, min_width=5)
        for split, metric in TERMINAL:
            name = metric.replace("{kmax}", "k").replace("_correct", "")
            table.add_column(("" if split == "test" else "ood ") + name, justify="right", no_wrap=True)
        for strategy, splits in strategies.items():
            cells = []
            for split, metric in TERMINAL:
                row = splits.get(split)
                stat = row["metrics"].get(metric.format(kmax=row["samples_per_problem"])) if row else None
                cells.append(_short(stat))
            table.add_row(strategy, str(next(iter(splits.values()))["n_seeds"]), *cells)
        for fail in summary.get("failed", []):
            if fail["task"] == task:
                table.add_row(fail["strategy"], f"#{fail['seed']}",
                              f"FAILED ({fail.get('phase', '?')}): {fail.get('reason', '')}", style="red")
        tables.append(table)
    return tables


def markdown(summary: dict[str, Any], title: str = "sdbench summary") -> str:
    header, rows = table_rows(summary)
    lines = [f"# {title}", "", "Mean over seeds and problems, with 95% percentile-bootstrap CIs.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if summary.get("deltas"):
        lines += ["", "## Paired deltas against " + summary["deltas"][0]["baseline"], "",
                  "| task | split | strategy | Δ pass@1 | Δ pass@gain | Δ distinct_correct |",
                  "|---|---|---|---|---|---|"]
        for d in summary["deltas"]:
            m = d["metrics"]
            lines.append(f"| {d['task']} | {d['split']} | {d['strategy']} | {_cell(m.get('pass@1'))} | "
                         f"{_cell(m.get('pass@gain'))} | {_cell(m.get('distinct_correct'))} |")
    return "\n".join(lines) + "\n"
