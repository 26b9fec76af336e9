"""Fixtures for the leaderboard tests: two submitted synthetic runs and the site built from them.

    pytest tests/leaderboard
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lb_fixtures import make_run

from sdbench.leaderboard.submit import submit


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two submitted runs over two tasks (a typical leaderboard), filed through `submit`."""
    base = tmp_path_factory.mktemp("leaderboard")
    results = base / "results"
    submit(make_run(base / "run-a", tasks=("graph_paths", "toy_pick"), rng_seed=1, config_hash="aaaa1111"),
           results, "run-a")
    submit(make_run(base / "run-b", tasks=("graph_paths",), strategies=("base", "grpo"), rng_seed=2,
                    config_hash="bbbb2222"), results, "run-b")
    return results


@pytest.fixture(scope="session")
def built_site(results_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sdbench.leaderboard.site import build_site

    out = tmp_path_factory.mktemp("site")
    build_site(results_dir, out)
    return out
