"""The built index.html in real headless Chromium (Playwright, system /usr/bin/chromium): both checkpoints'
tables, sorting, the frontier table, trajectory plots, pass@k curves and the Pareto scatter, provenance
rows, no network requests, no console errors; saves a screenshot to the test's tmp dir.

    pytest tests/leaderboard/test_leaderboard_browser.py -s      # -s prints the screenshot path

Needs the Debian `chromium` package (.ci/setup-system.sh installs it) and the `playwright` package
(dev extra); `playwright install` is never needed. Without them the test skips locally, fails in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import headless_page


@pytest.fixture(scope="module")
def browser_page(built_site: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    with headless_page((built_site / "index.html").as_uri()) as opened:
        yield opened


def _column(page: Any, table: str, col: int) -> list[str]:
    return page.eval_on_selector_all(f"#{table} tbody tr.entry",
                                     f"rows => rows.map(r => r.cells[{col}].getAttribute('data-sort'))")


HEADERS = ["run", "strategy", "pass@1", "pass@16", "any correct of 8", "pass@auc", "pass@gain", "distinct_correct",
           "semantic_classes", "ood pass@1", "ood any correct of 8", "amplification slope"]


def test_both_checkpoint_tables_with_one_row_per_run_and_strategy(browser_page: tuple) -> None:
    page, _, _ = browser_page
    assert page.locator("table.lb.sortable").count() == 2 * 2                    # 2 tasks x best_val, final
    for checkpoint in ("best_val", "final"):
        assert page.locator(f"#table-graph_paths-{checkpoint} tbody tr.entry").count() == 5 + 2   # run-a 5, run-b 2
        assert page.locator(f"#table-toy_pick-{checkpoint} tbody tr.entry").count() == 5
        pass1 = [float(v) for v in _column(page, f"table-graph_paths-{checkpoint}", 2)]
        assert pass1 == sorted(pass1, reverse=True)                              # best pass@1 first
    assert page.locator("#table-graph_paths-best_val tr.details:visible").count() == 0
    heads = "ths => ths.map(h => h.textContent)"
    assert page.eval_on_selector_all("#table-graph_paths-best_val thead th", heads) == [
        *HEADERS, "selected step", "provenance"]
    assert page.eval_on_selector_all("#table-graph_paths-final thead th", heads) == [*HEADERS, "provenance"]
    headings = page.eval_on_selector_all("#task-graph_paths h3", heads)
    assert headings[:2] == ["best-val checkpoint", "final checkpoint"]
    assert headings[-1] == "frontier: val pass@1 / distinct correct at matched KL from base"
    # the matched-budget comparisons come before the frontier: final step, matched KL, matched val pass@1
    kinds = [h.split(":")[0] for h in headings[2:-1]]
    assert {"matched step (final, test)", "matched KL from base (val)",
            "matched val pass@1 (iso-accuracy)"} <= set(kinds)


def test_what_it_shows_and_matched_comparisons_are_on_the_page(browser_page: tuple) -> None:
    page, _, _ = browser_page
    section = page.locator("#what-it-shows")
    assert section.is_visible() and section.locator("h2").inner_text() == "What it shows"
    text = section.inner_text()
    assert "final step (test)" in text and ("no detectable difference" in text or " than " in text)
    table = page.locator("#compare-graph_paths-0")
    assert table.is_visible()
    heads = page.eval_on_selector_all("#compare-graph_paths-0 thead th", "ths => ths.map(h => h.textContent)")
    assert heads == ["strategy", "Δ pass@1", "Δ pass@16", "Δ distinct_correct"]


def test_clicking_a_header_reorders_rows(browser_page: tuple) -> None:
    page, _, _ = browser_page
    table = "table-graph_paths-best_val"
    before = _column(page, table, 1)
    page.click(f"#{table} thead th:nth-child(2)")                                # strategy, ascending
    strategies = _column(page, table, 1)
    assert strategies == sorted(before) and strategies != before
    page.click(f"#{table} thead th:nth-child(8)")                                # distinct_correct, best first
    diversity = [float(v) for v in _column(page, table, 7)]
    assert diversity == sorted(diversity, reverse=True)
    assert page.get_attribute(f"#{table} thead th:nth-child(8)", "aria-sort") == "descending"
    page.click(f"#{table} thead th:nth-child(8)")                                # again: reversed
    assert [float(v) for v in _column(page, table, 7)] == sorted(diversity)
    # each provenance row travels with its entry
    runs = page.eval_on_selector_all(f"#{table} tbody", "bs => bs.map(b => [b.rows[0].cells[0].textContent, "
                                                        "b.rows[1].textContent.includes('run' + b.rows[0].cells[0]"
                                                        ".textContent)])")
    assert all(ok for _, ok in runs)
    # the other checkpoint's table is not touched
    final = [float(v) for v in _column(page, "table-graph_paths-final", 2)]
    assert final == sorted(final, reverse=True)


def test_provenance_row_opens_with_commit_config_training_and_model(browser_page: tuple) -> None:
    page, _, _ = browser_page
    first = page.locator("#table-toy_pick-final tbody").filter(has_text="single_sampled_demo[teacher=live]").first
    first.locator("button.prov").click()
    details = first.locator("tr.details")
    assert details.is_visible()
    text = details.inner_text()
    for want in ("0123456789abcdef", "hash aaaa1111", "teacher live, lr 0.0003, 4 steps", "sha256 " + "ab" * 32):
        assert want in text, want
    assert "aaaa1111" in (first.locator("tr.entry").get_attribute("title") or "")


def test_frontier_table(browser_page: tuple) -> None:
    page, _, _ = browser_page
    table = page.locator("#frontier-graph_paths")
    assert page.eval_on_selector_all("#frontier-graph_paths thead th", "ths => ths.map(h => h.textContent)") == [
        "run", "strategy", "KL 0.01", "KL 0.02", "KL 0.05", "KL 0.1", "KL 0.2"]   # the synthetic frontier
    assert table.locator("tbody tr").count() == 5 + 2
    base = table.locator("tbody tr").filter(has_text="base").first.locator("td")
    # the synthetic summaries have 3 seeds; base never moves from the base model
    assert [base.nth(i).inner_text() for i in range(2, 7)] == ["– (0/3 seeds)"] * 5
    cells = table.locator("tbody td").all_inner_texts()
    assert any(c.endswith("(3/3 seeds)") and " / " in c for c in cells)


def test_trajectories_curves_and_scatter_are_drawn(browser_page: tuple) -> None:
    page, _, _ = browser_page
    for kind in ("trajectories", "curves", "pareto"):
        figures = page.locator(f"figure.{kind} svg")
        assert figures.count() == 2
        for i in range(2):
            box = figures.nth(i).bounding_box()
            assert box and box["width"] > 300 and box["height"] > 150
            assert figures.nth(i).locator("path").count() > 20
    trajectories = page.locator("#task-graph_paths figure.trajectories svg")
    assert trajectories.bounding_box()["width"] > 900                            # spans the page
    text = trajectories.text_content() or ""
    for panel in ("val pass@1", "val distinct correct / problem", "KL(policy || base), nats/token",
                  "along training (hollow: step 0)", "single_sampled_demo[teacher=live] (run-a)", "grpo (run-b)"):
        assert panel in text, panel
    # 5 trained series (run-a: 4, run-b: 1) draw a CI band on each of 3 step panels
    assert trajectories.locator("g[id*='PolyCollection']").count() >= 5 * 3
    assert page.locator("#task-graph_paths figure.curves svg g[id*='line2d']").count() >= 7
    assert "Pareto" in (page.locator("#task-graph_paths figure.pareto svg").text_content() or "")


def test_no_network_no_console_errors_and_screenshot(browser_page: tuple, tmp_path: Path) -> None:
    page, requests, errors = browser_page
    page.locator("#table-graph_paths-best_val tbody button.prov").first.click()
    shot = tmp_path / "leaderboard.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 20_000
    assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests
    assert errors == []

