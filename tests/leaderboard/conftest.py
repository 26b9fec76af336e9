"""Fixtures for the leaderboard tests: two synthetic schema-2 results files and the site built from them.

    pytest tests/leaderboard

The results are written as `submit` files them (tests/leaderboard/lb_fixtures.make_results); the site
tests exercise rendering, `test_leaderboard_submit.py` the real submission path (summary recomputed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lb_fixtures import make_results

from sdbench.runs.store import atomic_write_json

STRATEGIES_A = ("base", "single_sampled_demo", "single_sampled_demo[teacher=live]", "grpo", "multi_demo")


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs over two tasks (a typical leaderboard): run-a 5 strategies x 2 tasks, run-b 2 x 1."""
    results = tmp_path_factory.mktemp("leaderboard") / "results"
    atomic_write_json(results / "run-a.json", make_results("run-a", tasks=("graph_paths", "toy_pick"),
                                                           strategies=STRATEGIES_A, rng_seed=1,
                                                           config_hash="aaaa1111"))
    atomic_write_json(results / "run-b.json", make_results("run-b", tasks=("graph_paths",), strategies=("base", "grpo"),
                                                           rng_seed=2, config_hash="bbbb2222"))
    return results


@pytest.fixture(scope="session")
def built_site(results_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sdbench.leaderboard.site import build_site

    out = tmp_path_factory.mktemp("site")
    build_site(results_dir, out)
    return out
