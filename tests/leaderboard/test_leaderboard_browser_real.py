"""The leaderboard page's real-model section and mechanism plot in real headless Chromium (issue 32).

    pytest tests/leaderboard/test_leaderboard_browser_real.py

Its own module: test_leaderboard_browser.py holds one page open for its whole module (Playwright's sync API
allows one at a time per thread). Needs Chromium and playwright, as that module does.
"""

from __future__ import annotations

from pathlib import Path

from browser import headless_page


def test_the_real_model_section_and_the_mechanism_plot_render(tmp_path: Path) -> None:
    """Issue 32: a testbed run and a real-model run (`--model`) with measured mode amplification: the page has
    the real model's own section after the testbed's (its nav link, both checkpoint tables with its arms), and
    its mechanism figure draws the share and effective-class lines and the slope error bars."""
    from lb_fixtures import make_results

    from sdbench.leaderboard.site import build_site
    from sdbench.runs.store import atomic_write_json

    def stat(mean: float) -> dict:
        return {"mean": mean, "ci_low": mean - 0.1, "ci_high": mean + 0.1}

    arms = ("base", "single_sampled_demo", "grpo")
    mech = {"definition": "d", "arms": [
        {"strategy": s, "task": "graph_paths", "slope": stat(0.3 * k), "null_slope": stat(0.0),
         "steps": [{"step": t, "dominant_share": stat(0.4 + 0.05 * k * t / 8), "effective_classes": stat(3 - k * t / 8),
                    "slope": None if t == 0 else stat(0.3 * k)} for t in (0, 8, 16, 24)]}
        for k, s in enumerate(arms)]}
    results = tmp_path / "results"
    for name, model in (("testbed", None), ("real", "smollm2-135m-instruct")):
        doc = make_results(name, tasks=("graph_paths",), strategies=arms, rng_seed=3)
        doc["config"]["model"] = model
        if model:
            doc["summary"]["mechanism"] = mech
        atomic_write_json(results / f"{name}.json", doc)
    site = tmp_path / "site"
    build_site(results, site)
    with headless_page((site / "index.html").as_uri()) as (page, _, errors):
        sections = page.locator("section[id^='task-']")
        assert [sections.nth(i).locator("h2").inner_text() for i in range(sections.count())] == [
            "graph_paths · version not recorded",
            "graph_paths · version not recorded · real pretrained model smollm2-135m-instruct"]
        real = page.locator("#task-graph_paths-smollm2-135m-instruct")
        assert page.locator("a[href='#task-graph_paths-smollm2-135m-instruct']").count() == 1
        for checkpoint in ("best_val", "final"):
            rows = real.locator(f"#table-graph_paths-smollm2-135m-instruct-{checkpoint} tbody tr.entry")
            assert rows.count() == len(arms)
        figure = real.locator("figure.mechanism svg")
        box = figure.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 150
        text = figure.text_content() or ""
        assert all(s in text for s in arms)
        assert figure.locator("g[id*='FillBetweenPolyCollection']").count() == 2 * len(arms)   # share, classes
        assert figure.locator("g[id*='LineCollection']").count() == 2 * len(arms)    # slope and null error bars
        assert errors == []
