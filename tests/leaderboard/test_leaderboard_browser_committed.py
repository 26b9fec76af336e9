"""The committed leaderboard page (leaderboard/index.html) in real headless Chromium: every section of the
committed results is there with one row per arm in both checkpoint tables, its comparison, frontier and mechanism
tables and its four plots, and the page loads nothing but itself and logs no error.

    pytest tests/leaderboard/test_leaderboard_browser_committed.py

The synthetic-results browser tests (test_leaderboard_browser*.py) check sorting and the plots' contents; this
one holds the page users read to the results it was built from. Needs Chromium and playwright as those do.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import headless_page

LEADERBOARD = Path(__file__).resolve().parents[2] / "leaderboard"


def test_the_committed_page_shows_every_section_of_the_committed_results() -> None:
    from sdbench.leaderboard.site import load_all
    from sdbench.leaderboard.views import task_views

    views = task_views(load_all(LEADERBOARD / "results"))
    if not views:
        pytest.skip("no committed results")
    with headless_page((LEADERBOARD / "index.html").as_uri()) as (page, requests, errors):
        assert errors == [] and all(url.startswith("file:") for url in requests)
        for view in views:
            for checkpoint, entries in view.tables.items():
                if entries:
                    rows = page.locator(f"#table-{view.slug}-{checkpoint} tbody tr.entry")
                    assert rows.count() == len(entries), (view.slug, checkpoint)
            n = len(view.comparisons)        # compare-<slug>-0 .. -(n-1), and no more
            assert [page.locator(f"#compare-{view.slug}-{i}").count() for i in range(n + 1)] == [1] * n + [0], view.slug
            assert page.locator(f"#frontier-{view.slug}").count() == 1, view.slug
            section = page.locator(f"section:has(#table-{view.slug}-final)")
            assert section.locator("figure svg").count() >= 4, view.slug   # trajectories, curves, Pareto, mechanism
