"""A run's report.html (sdbench.runs.report_html): built from a synthetic schema-2 Summary, checked as text
(one trajectory figure per task, every table, byte-for-byte determinism, nothing that loads) and in real
headless Chromium (tables and plots drawn, no console errors, no network requests).

    pytest tests/test_report_html.py

The browser test needs /usr/bin/chromium and playwright (see tests/leaderboard/test_leaderboard_browser.py);
without them it skips locally and fails in CI.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from browser import headless_page

from sdbench.results.record import FrontierEntry, Stat, Summary, SummaryRow, TrajectoryEntry
from sdbench.runs.report_html import write_report

TASKS = ("graph_paths", "arith_target")
STRATEGIES = ("base", "single_sampled_demo", "single_sampled_demo[teacher=live]", "grpo")
STEPS = (0, 25, 50, 75)
BUDGETS = (0.01, 0.02, 0.05, 0.1, 0.2)


def _stat(rng: random.Random, mean: float, width: float = 0.04) -> Stat:
    low = round(mean - rng.uniform(0.2, 1.0) * width, 6)
    return Stat(mean=round(mean, 6), ci_low=low, ci_high=round(mean + rng.uniform(0.2, 1.0) * width, 6))


def synthetic_summary(tasks: tuple[str, ...] = TASKS, strategies: tuple[str, ...] = STRATEGIES, seed: int = 0,
                      failed: bool = True) -> Summary:
    """Rows at both checkpoints, trajectories from step 0 (base: step 0 only), the frontier; no deltas.
    With `failed`, one failed cell on the first task."""
    rng = random.Random(seed)
    rows, trajectories, frontier = [], [], []
    for task in tasks:
        for i, strategy in enumerate(strategies):
            trains = strategy != "base"
            for checkpoint in ("best_val", "final"):
                for split in ("test", "ood"):
                    p1 = 0.4 + 0.05 * i - (0.15 if split == "ood" else 0.0) - (0.02 if checkpoint == "final" else 0)
                    metrics = {f"pass@{k}": _stat(rng, min(1.0, p1 + 0.1 * j)) for j, k in enumerate((1, 2, 4, 8))}
                    metrics |= {"pass@auc": _stat(rng, p1 + 0.1), "pass@gain": _stat(rng, 0.3),
                                "distinct_correct": _stat(rng, 4.0 - i * 0.5, 0.3),
                                "semantic_classes": _stat(rng, 2.0, 0.2), "entropy": _stat(rng, 0.8, 0.1)}
                    step = (_stat(rng, 50.0, 25.0) if trains else Stat(mean=0, ci_low=0, ci_high=0)) \
                        if checkpoint == "best_val" else None
                    rows.append(SummaryRow(strategy=strategy, task=task, split=split, checkpoint=checkpoint,
                                           n_seeds=3, seeds=[0, 1, 2], n_problems=20, samples_per_problem=8,
                                           selected_step=step, metrics=metrics))
            for step in STEPS if trains else (0,):
                moved = step / STEPS[-1]
                trajectories.append(TrajectoryEntry(strategy=strategy, task=task, step=step, n_seeds=3, metrics={
                    "pass@1": _stat(rng, 0.45 + 0.1 * moved * (i - 1)), "pass@16": _stat(rng, 0.9),
                    "distinct_correct": _stat(rng, 5.0 - moved * i, 0.3), "entropy": _stat(rng, 0.9 - 0.2 * moved),
                    "kl_from_base": _stat(rng, 0.1 * moved * i, 0.01) if step else Stat(mean=0, ci_low=0, ci_high=0)}))
            for budget in BUDGETS:
                reached = 0 if not trains or budget > 0.1 * i else 3 - (budget > 0.05)
                metrics = {"pass@1": _stat(rng, 0.5), "distinct_correct": _stat(rng, 3.0, 0.3)} if reached else {}
                frontier.append(FrontierEntry(strategy=strategy, task=task, kl_budget=budget, n_seeds_reached=reached,
                                              metrics=metrics))
    fails = [{"key": f"{tasks[0]}__rft__seed1", "strategy": "rft", "task": tasks[0], "seed": 1, "phase": "train",
              "reason": "diverged"}] if failed else []
    return Summary(config_hash="c0ffee0012345678", rows=rows, trajectories=trajectories, frontier=frontier,
                   failed=fails,
                   timing={"setup_s": 3.0, "sample_s": 40.0, "teacher_s": 10.0, "eval_s": 12.5})


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(tmp_path_factory.mktemp("run"), synthetic_summary())


def test_one_trajectory_figure_and_every_table_per_task(report: Path) -> None:
    html = report.read_text()
    assert report.name == "report.html"
    assert html.count("<svg") == len(TASKS) and html.count('<figure class="trajectories wide">') == len(TASKS)
    for task in TASKS:
        section = html.split(f'<section id="task-{task}">')[1].split("</section>")[0]
        for table in (f"frontier-{task}", f"table-{task}-best_val", f"table-{task}-final"):
            assert f'id="{table}"' in section
        for panel in ("val pass@1", "val distinct correct / problem", "KL(policy || base), nats/token",
                      "along training (hollow: step 0)"):
            assert panel in section
        # every strategy label in full, in the legend and the tables, never cut
        assert section.count("single_sampled_demo[teacher=live]") >= 1 + 2 * 2 + 1
    frontier = html.split('id="frontier-graph_paths"')[1].split("</table>")[0]
    assert re.findall(r"<th[^>]*>([^<]*)</th>", frontier) == ["strategy", "KL 0.01", "KL 0.02", "KL 0.05", "KL 0.1",
                                                             "KL 0.2"]
    assert "<td>– (0/3 seeds)</td>" in frontier and "(2/3 seeds)</td>" in frontier
    assert "FAILED: diverged" in html and 'id="timing"' in html and '<td class="text">sample</td><td>40.0</td>' in html


def test_same_summary_same_bytes_in_a_fresh_process(report: Path, tmp_path: Path) -> None:
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from pathlib import Path; "
            "from test_report_html import synthetic_summary; from sdbench.runs.report_html import write_report; "
            "write_report(Path(sys.argv[1]), synthetic_summary())")
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path), str(Path(__file__).parent)], check=True, env=env)
    assert (tmp_path / "report.html").read_bytes() == report.read_bytes()


def test_nothing_loads_from_anywhere(report: Path) -> None:
    html = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?https?:|@import|<link|<script""", html)
    assert "default-src 'none'" in html and "<dc:date>" not in html and "<metadata>" not in html


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    with headless_page(report.as_uri()) as (page, requests, errors):
        assert page.locator("section").count() == len(TASKS)
        for task in TASKS:
            figure = page.locator(f"#task-{task} figure.trajectories svg")
            box = figure.bounding_box()
            assert box and box["width"] > 600 and box["height"] > 400
            # 4 panels; 3 trained strategies draw a line + a CI band on 3 panels, base a dashed line
            assert figure.locator("g[id*='axes_']").count() >= 4
            assert figure.locator("g[id*='line2d']").count() >= 3 * 4 + 3
            assert figure.locator("g[id*='PolyCollection']").count() >= 3 * 3
            assert page.locator(f"#frontier-{task} tbody tr").count() == len(STRATEGIES)
            assert page.locator(f"#table-{task}-best_val tbody tr").count() == len(STRATEGIES) * 2 + (task == TASKS[0])
            assert page.locator(f"#table-{task}-final tbody tr").count() == len(STRATEGIES) * 2 + (task == TASKS[0])
        assert page.locator("#timing tbody tr").count() == 5
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 20_000
    assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests
    assert errors == []
