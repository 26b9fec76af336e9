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


def rich_table(summary: dict[str, Any], title: str = "sdbench summary (mean [95% CI])") -> Table:
    header, rows = table_rows(summary)
    table = Table(title=title, show_lines=False)
    for name in header:
        table.add_column(name, no_wrap=name in ("task", "split", "strategy"))
    for row in rows:
        table.add_row(*row, style="red" if len(row) > 4 and row[4].startswith("FAILED") else None)
    return table


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
