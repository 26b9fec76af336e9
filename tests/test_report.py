"""The terminal tables and summary.md of a schema-2 summary (sdbench.runs.report), on a hand-built Summary:
exact cell texts (best-val pass@1 with the final one beside it, the frontier cell, the selected step,
the timing shares), both checkpoints' tables, the deltas, and labels never cut in a narrow terminal.

    pytest tests/test_report.py
"""

from __future__ import annotations

import io

from rich.console import Console

from sdbench.presentation.tables import timing_table
from sdbench.presentation.text import frontier_cell, step_text
from sdbench.results.record import Delta, FrontierEntry, Stat, Summary, SummaryRow, TrajectoryEntry
from sdbench.runs.report import markdown, rich_tables

LIVE = "single_sampled_demo[teacher=live]"


def S(mean: float, low: float | None = None, high: float | None = None) -> Stat:
    return Stat(mean=mean, ci_low=mean if low is None else low, ci_high=mean if high is None else high)


def _row(strategy: str, split: str, checkpoint: str, pass1: Stat, step: Stat | None = None) -> SummaryRow:
    metrics = {"pass@1": pass1, "pass@2": S(0.7, 0.6, 0.8), "pass@auc": S(0.6), "pass@gain": S(0.2, 0.1, 0.3),
               "distinct_correct": S(3.25, 3.0, 3.5), "semantic_classes": S(2.0), "entropy": S(0.9)}
    return SummaryRow(strategy=strategy, task="graph_paths", split=split, checkpoint=checkpoint, n_seeds=3,
                      seeds=[0, 1, 2], n_problems=4, samples_per_problem=2, selected_step=step, metrics=metrics)


def hand_built() -> Summary:
    rows = []
    for strategy, best, final, step in (("base", 0.40, 0.40, S(0)), (LIVE, 0.53, 0.51, S(50.0, 25.0, 75.0))):
        for split in ("test", "ood"):
            shift = -0.1 if split == "ood" else 0.0
            rows.append(_row(strategy, split, "best_val", S(best + shift, best + shift - 0.02, best + shift + 0.02),
                             step))
            rows.append(_row(strategy, split, "final", S(final + shift, final + shift - 0.03, final + shift + 0.03)))
    trajectories = [TrajectoryEntry(strategy=LIVE, task="graph_paths", step=step, n_seeds=3,
                                    metrics={"pass@1": S(0.5), "kl_from_base": S(kl)})
                    for step, kl in ((0, 0.0), (25, 0.03), (50, 0.08))]
    frontier = [
        FrontierEntry(strategy=LIVE, task="graph_paths", kl_budget=0.01, n_seeds_reached=3,
                      metrics={"pass@1": S(0.5123, 0.5, 0.52), "distinct_correct": S(3.414, 3.2, 3.6)}),
        FrontierEntry(strategy=LIVE, task="graph_paths", kl_budget=0.1, n_seeds_reached=2,
                      metrics={"pass@1": S(0.49), "distinct_correct": S(2.0)}),
        FrontierEntry(strategy="base", task="graph_paths", kl_budget=0.01, n_seeds_reached=0),
        FrontierEntry(strategy="base", task="graph_paths", kl_budget=0.1, n_seeds_reached=0),
    ]
    deltas = [Delta(strategy=LIVE, baseline="single_sampled_demo", task="graph_paths", split="test",
                    checkpoint="best_val", metrics={"pass@1": S(0.05, 0.01, 0.09)})]
    return Summary(rows=rows, trajectories=trajectories, frontier=frontier, deltas=deltas,
                   timing={"setup_s": 10.0, "sample_s": 60.0, "eval_s": 30.0})


def test_frontier_cell_and_step_texts() -> None:
    entry = hand_built().frontier[0]
    assert frontier_cell(entry, 3) == "0.512 / 3.41 (3/3 seeds)"
    assert frontier_cell(hand_built().frontier[2], 3) == "– (0/3 seeds)"
    assert step_text(S(50.0)) == "50" and step_text(S(50.0, 25.0, 75.0)) == "50.0 [25, 75]" and step_text(None) == "–"


def test_markdown_holds_both_checkpoints_deltas_frontier_and_timing() -> None:
    md = markdown(hand_built())
    assert md.startswith("# sdbench summary\n")
    sections = [line for line in md.splitlines() if line.startswith("#")]
    # comparisons at matched budgets first: the final step, then the deltas, then best-val
    assert sections == ["# sdbench summary", "## final checkpoint", "## Paired deltas", "## best-val checkpoint",
                        "## Frontier: at matched KL from base", "### graph_paths", "## Timing"]
    final, best = md.split("## best-val checkpoint")[0], md.split("## best-val checkpoint")[1]
    assert ("| task | split | strategy | seeds | selected step | pass@1 | pass@k (k = n/4) | any correct of 2 | "
            "pass@auc | pass@gain | distinct_correct | semantic_classes | entropy | pass@1 seed SD / share | "
            "distinct seed SD / share |") in best
    assert (f"| graph_paths | test | {LIVE} | 3 | 50.0 [25, 75] | 0.530 [0.510, 0.550] | 0.530 [0.510, 0.550] | "
            "0.700 [0.600, 0.800] | 0.600 [0.600, 0.600] | 0.200 [0.100, 0.300] | 3.250 [3.000, 3.500] | "
            "2.000 [2.000, 2.000] | 0.900 [0.900, 0.900] | – | – |") in best
    assert "selected step" not in final
    assert f"| graph_paths | test | {LIVE} | 3 | 0.510 [0.480, 0.540] |" in final
    assert f"| best_val | graph_paths | test | {LIVE} | single_sampled_demo | 0.050 [0.010, 0.090] | – | – |" in md
    frontier = md.split("### graph_paths")[1].split("## Timing")[0]
    assert "| strategy | KL 0.01 | KL 0.1 |" in frontier
    assert f"| {LIVE} | 0.512 / 3.41 (3/3 seeds) | 0.490 / 2.00 (2/3 seeds) |" in frontier
    assert "| base | – (0/3 seeds) | – (0/3 seeds) |" in frontier
    assert "| sample | 60.0 | 60.0% |" in md and "| total | 100.0 | 100.0% |" in md


def test_markdown_matched_budgets_checkpoint_rule_and_seed_share() -> None:
    from sdbench.results.record import CheckpointRule, MatchedDelta

    summary = hand_built()
    summary.rows[0].metrics["pass@1"] = Stat(mean=0.4, ci_low=0.3, ci_high=0.5, seed_sd=0.031, seed_share=0.72)
    summary = summary.model_copy(update={
        "matched_deltas": [MatchedDelta(strategy=LIVE, baseline="grpo", task="graph_paths", match="kl_from_base",
                                        level=0.1, n_seeds=3, n_seeds_baseline=2,
                                        metrics={"distinct_correct": S(0.2, -0.1, 0.5), "pass@1": S(-0.05)})],
        "checkpoint_rules": [CheckpointRule(rule="one_se", agreement=0.6, n_pairs=100),
                             CheckpointRule(rule="argmax", agreement=0.95, n_pairs=100, chosen=True)]})
    md = markdown(summary)
    assert "0.031 / 72%" in md
    assert f"| graph_paths | 0.1 | {LIVE} | grpo | 3 / 2 | 0.200 [-0.100, 0.500] | -0.050 [-0.050, -0.050] | – |" in md
    assert ("The best-val rows use argmax, pinned for every task (chosen on val split-half agreement of the full-v2 "
            "run: argmax 90.7%, smoothed argmax 89.3%, one-SE 69.0%;") in md
    assert "here 95.0% of 100 split pairs agree on it." in md
    assert "| argmax (pinned) | 95.0% | 100 |" in md and "| one_se | 60.0% | 100 |" in md
    assert md.index("## At matched KL from base") < md.index("## best-val checkpoint") < md.index("## Checkpoint rule")


def test_timing_table_in_pipeline_order() -> None:
    _, rows = timing_table(hand_built())
    assert [r[0] for r in rows] == ["setup", "sample", "eval", "total"]


def _render(summary: Summary, width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    for table in rich_tables(summary):
        console.print(table)
    return out.getvalue()


def test_terminal_tables_are_one_line_per_strategy_at_80_columns() -> None:
    # piped (`sdbench run | tee log`) rich renders at 80 columns: every table line fits, one line per strategy
    text = _render(hand_built(), 80)
    assert all(len(line) <= 80 for line in text.splitlines())
    titles = [line.rstrip() for line in text.splitlines() if line.startswith("graph_paths:")]
    assert titles == ["graph_paths: test, final step, 3 seeds, mean ±95% CI",
                      "graph_paths: test, best-val step (chosen on val), 3 seeds",
                      "graph_paths: ood, final step, 3 seeds"]
    live = [line for line in text.splitlines() if LIVE in line]
    assert len(live) == 3   # one line in each table
    # strategy, pass@1, distinct (n = 2 here: no pass@k below n but pass@1, so no pass@k column)
    assert [c.strip() for c in live[0].split("│")] == [LIVE, "0.51 ±0.03", "3.25 ±0.25"]
    assert [c.strip() for c in live[1].split("│")][-1] == "50.0"   # the best-val step: mean over seeds
    assert _render(hand_built(), 200) == text   # a wide terminal: the same compact tables


def test_failed_cells_show_in_red_rows_and_in_markdown() -> None:
    summary = hand_built().model_copy(update={"failed": [{"key": "k", "strategy": "rft", "task": "graph_paths",
                                                          "seed": 1, "phase": "train", "reason": "diverged"}]})
    assert "FAILED (train): diverged" in _render(summary, 200)
    only_failed = Summary(rows=[], failed=summary.failed)
    assert all(len(line) <= 80 for line in _render(summary, 80).splitlines())
    assert "graph_paths: no finished cells" in _render(only_failed, 200)
    assert "rft (seed 1)" in _render(only_failed, 200)
    assert "| graph_paths | - | rft | seed 1 | FAILED: diverged |" in markdown(summary)
