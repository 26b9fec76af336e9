"""The main README's headline table, computed from submitted results (and checked against them by a test).

    from sdbench.leaderboard.headline import headline_table
    print(headline_table(load_all(Path("leaderboard/results"))))

One row per strategy (arm), one column per task; a cell is test pass@1 · pass@16 · distinct correct
solutions at the final step (a matched budget: every arm trained the same steps), all three on the same
split and n (64 samples per problem; pass@16 is the unbiased estimator with k < n, not "any correct of
64"). Rows are ordered by pass@1 summed over tasks, so the table reads from strongest to weakest.

Runs on a real pretrained model (`--model`, `views.base_model`) are not in it: `real_model_table` is theirs,
one column per (task, model), with pass@8 at their n = 16 (real-quick's test budget; pass@16 at n = 16 is only
"any correct of 16").
"""

from __future__ import annotations

from collections.abc import Sequence

from sdbench.config import DEFAULT_TASKS
from sdbench.leaderboard.schema import Results
from sdbench.leaderboard.views import base_model, version_key
from sdbench.presentation.text import MAIN_SPLIT

HEADLINE_CHECKPOINT = "final"
HEADLINE_K = 16
REAL_MODEL_K = 8


def headline_cells(results: Sequence[Results], k: int = HEADLINE_K,
                   ) -> tuple[list[str], dict[str, dict[str, str]], dict[str, float]]:
    """(tasks, strategy -> task -> cell text, strategy -> pass@1 summed over its tasks).

    A (strategy, task) measured by several submissions shows the one on the newest task version (the
    cells' `task_version`; a testbed changed by a new version supersedes the older numbers), among equals
    the later submission in `results`. The score sums the shown cells only."""
    tasks: list[str] = []
    shown: dict[tuple[str, str], tuple[tuple[int, str], str, float]] = {}
    for doc in results:
        versions = {(c.strategy.label, c.task): c.task_version for c in doc.cells}
        model = base_model(doc)
        for row in doc.summary.rows:
            if row.split != MAIN_SPLIT or row.checkpoint != HEADLINE_CHECKPOINT:
                continue
            column = row.task if model is None else f"{row.task} ({model})"
            if column not in tasks:
                tasks.append(column)
            m = row.metrics
            pk = m.get(f"pass@{k}")
            text = (f"{m['pass@1'].mean:.3f} · {'–' if pk is None else f'{pk.mean:.3f}'} · "
                    f"{m['distinct_correct'].mean:.2f}")
            version = version_key(versions.get((row.strategy, row.task)))
            old = shown.get((row.strategy, column))
            if old is None or version >= old[0]:
                shown[(row.strategy, column)] = (version, text, m["pass@1"].mean)
    cells: dict[str, dict[str, str]] = {}
    score: dict[str, float] = {}
    for (strategy, task), (_, text, pass1) in shown.items():
        cells.setdefault(strategy, {})[task] = text
        score[strategy] = score.get(strategy, 0.0) + pass1
    return tasks, cells, score


def headline_table(results: Sequence[Results]) -> str:
    """The markdown table of the embedded testbeds (header, separator, one line per strategy), no trailing
    newline."""
    return _table([r for r in results if base_model(r) is None], HEADLINE_K)


def real_model_table(results: Sequence[Results]) -> str:
    """The same table for the runs on real pretrained models (pass@8 at n = 16); "" when there are none."""
    real = [r for r in results if base_model(r) is not None]
    return _table(real, REAL_MODEL_K) if real else ""


def _table(results: Sequence[Results], k: int) -> str:
    tasks, cells, score = headline_cells(results, k)
    order = {name: i for i, name in enumerate(DEFAULT_TASKS)}
    tasks = sorted(tasks, key=lambda t: (order.get(t, len(order)), t))   # the embedded testbeds first, in order
    lines = ["| strategy | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for strategy in sorted(cells, key=lambda s: (-round(score[s], 6), s)):
        lines.append(f"| `{strategy}` | " + " | ".join(cells[strategy].get(t, "–") for t in tasks) + " |")
    return "\n".join(lines)
