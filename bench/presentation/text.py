"""How one number of a result is written, everywhere it is shown: cell formats, captions, split names, markdown.

    from sdbench.presentation.text import fmt, step_text, md_table, checkpoint_caption
    fmt(stat)                        # '0.512 [0.481, 0.540]'
    checkpoint_caption("best_val")   # 'best-val checkpoint (highest val pass@1 per seed; ties: the earliest step)'

The run's summary.md and terminal tables (`sdbench.runs.report`), its report.html
(`sdbench.runs.report_html`) and the leaderboard (`sdbench.leaderboard`) all write numbers, captions
and tables through here, so the same result reads the same in each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from sdbench.results.record import Checkpoint, FrontierEntry, Stat, SummaryRow

NOT_MEASURED = "not measured"   # the mechanism of results without class histograms (schema 2)
MAIN_SPLIT, OOD_SPLIT = "test", "ood"   # a task without "test" shows its first non-OOD split as the main one
CHECKPOINT_TITLES: dict[Checkpoint, str] = {"best_val": "best-val checkpoint", "final": "final checkpoint"}
CHECKPOINT_RULES: dict[Checkpoint, str] = {
    "best_val": "highest val pass@1 per seed; ties: the earliest step",
    "final": "after the last training step; a matched budget: every arm trained the same steps",
}


def checkpoint_caption(checkpoint: Checkpoint) -> str:
    """'best-val checkpoint (highest val pass@1 per seed; ties: the earliest step)'."""
    return f"{CHECKPOINT_TITLES[checkpoint]} ({CHECKPOINT_RULES[checkpoint]})"


def slug(text: str) -> str:
    """An id / file-name fragment of a task or title."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "task"


# --- cell formats ----------------------------------------------------------------------------------

def fmt(stat: Stat | Mapping[str, float] | None, digits: int = 3) -> str:
    """mean [ci_low, ci_high], three decimals; a plain {mean, ci_low, ci_high} dict (the mechanism section's
    JSON) formats the same way."""
    if stat is None or not stat:
        return "–"
    if isinstance(stat, Mapping):
        stat = Stat(mean=stat["mean"], ci_low=stat["ci_low"], ci_high=stat["ci_high"])
    return f"{stat.mean:.{digits}f} [{stat.ci_low:.{digits}f}, {stat.ci_high:.{digits}f}]"


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
    """n, the samples per problem of the row: pass@n ("any correct of n") is its largest k."""
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


def compact(stat: Stat | None) -> str:
    """'0.29 ±0.03': mean and half the CI width, two decimals (10 characters for values below 10)."""
    return "-" if stat is None else f"{stat.mean:.2f} ±{(stat.ci_high - stat.ci_low) / 2:.2f}"


def below_n(row: SummaryRow | None) -> str:
    """The row's pass@k below n (k = n/4: pass@16 at n = 64), never pass@n ('any correct of n')."""
    return f"pass@{max(kmax(row) // 4, 1)}" if row is not None else "pass@1"


def below_n_stat(metrics: dict[str, Stat]) -> Stat | None:
    """pass@k with the largest k below the largest n in `metrics` that is n/4 (pass@16 of 64, pass@4 of 16)."""
    ks = sorted(int(m[5:]) for m in metrics if m.startswith("pass@") and m[5:].isdigit())
    return metrics.get(f"pass@{ks[-1] // 4}") if ks and ks[-1] >= 8 else None   # n < 8: no k in 2..n-1 at n/4


def step_short(stat: Stat | None) -> str:
    """The selected step over seeds: '75' when every seed chose it, else its mean '66.7'."""
    if stat is None:
        return "–"
    return f"{stat.mean:g}" if stat.ci_low == stat.ci_high == stat.mean else f"{stat.mean:.1f}"


def budget_title(budget: float) -> str:
    return f"KL {budget:g}"


# --- markdown --------------------------------------------------------------------------------------

def _esc(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(map(_esc, header)) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(map(_esc, row)) + " |" for row in rows)]
