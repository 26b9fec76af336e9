"""The repository's own leaderboard: what is committed under leaderboard/ is built from the committed
results only, those results are the full-profile default suite, and the main README's headline table
shows their numbers.

    pytest tests/leaderboard/test_committed_leaderboard.py

If this fails after a change to the site's code or its plotting library, rebuild and commit:
`sdbench leaderboard build`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdbench.config import DEFAULT_TASKS
from sdbench.leaderboard import Results, build_site, load_results
from sdbench.registry import HOME_DISTRIBUTION
from sdbench.strategy import STRATEGIES

ROOT = Path(__file__).resolve().parents[2]
LEADERBOARD = ROOT / "leaderboard"
RESULTS = LEADERBOARD / "results"
HEADLINE = re.compile(r"^\| `(?P<strategy>[a-z_]+)` \|(?P<cells>.*)\|$")


def _committed() -> list[Path]:
    return sorted(RESULTS.glob("*.json"))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".html", ".md", ".svg") and p.parent.name != "results"}


@pytest.fixture(scope="module")
def full_results() -> Results:
    """The full-profile submission; re-validated here, summary recomputed from its per-problem counts."""
    fulls = [results for results in map(load_results, _committed()) if results.config.get("profile") == "full"]
    assert len(fulls) == 1, f"expected one full-profile submission in {RESULTS}, found {len(fulls)}"
    return fulls[0]


def test_results_are_the_full_default_suite(full_results: Results) -> None:
    builtin = {entry.name for entry in STRATEGIES.entries()
               if entry.distribution == HOME_DISTRIBUTION and entry.entry_point is not None}
    assert len(builtin) >= 11
    prov = full_results.provenance
    assert {s.name for s in prov.strategies} == builtin
    assert set(prov.tasks) == set(DEFAULT_TASKS)
    assert len(prov.seeds) >= 3
    assert len(full_results.cells) == len(builtin) * len(DEFAULT_TASKS) * len(prov.seeds)
    for cell in full_results.cells:
        assert cell.status == "ok", cell.key
        assert set(cell.eval) == {"test", "ood"}, cell.key
        assert all(split.n >= 64 for split in cell.eval.values()), cell.key
        trained = cell.strategy.name != "base"
        assert (cell.train is not None and cell.train.steps > 0) == trained, cell.key


def test_committed_site_is_rebuilt_byte_for_byte(tmp_path: Path) -> None:
    assert _committed(), f"no submitted results in {RESULTS}"
    out = tmp_path / "site"
    build_site(RESULTS, out)
    committed, rebuilt = _files(LEADERBOARD), _files(out)
    assert sorted(committed) == sorted(rebuilt), "leaderboard/ holds other or fewer files than a build writes"
    stale = [name for name in rebuilt if committed[name] != rebuilt[name]]
    assert not stale, f"committed {stale} differ from a fresh build: run `sdbench leaderboard build`"


def test_cli_build_in_place_changes_nothing(tmp_path: Path) -> None:
    # the exact command a maintainer runs, on a copy of the repository's leaderboard folder
    copy = tmp_path / "leaderboard"
    shutil.copytree(LEADERBOARD, copy)
    before = _files(copy)
    subprocess.run([sys.executable, "-c", "from sdbench.cli import main; main()", "leaderboard", "build",
                    "--results", str(copy / "results"), "--out", str(copy)], check=True, capture_output=True)
    assert _files(copy) == before


def _headline_rows() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    assert "(leaderboard/index.html)" in text and "(leaderboard/README.md)" in text
    rows = {}
    for line in text.split("## Leaderboard (full profile)")[1].split("\n## ")[0].splitlines():
        match = HEADLINE.match(line)
        if match:
            rows[match["strategy"]] = [cell.strip() for cell in match["cells"].split("|")]
    return rows


def test_readme_headline_table_shows_the_committed_numbers(full_results: Results) -> None:
    rows = _headline_rows()
    by_key = {(r.strategy, r.task): r for r in full_results.summary.rows if r.split == "test"}
    assert set(rows) == {s for s, _ in by_key}
    k_max = max(r.samples_per_problem for r in by_key.values())
    for strategy, cells in rows.items():
        assert len(cells) == len(DEFAULT_TASKS), strategy
        for task, cell in zip(DEFAULT_TASKS, cells, strict=True):
            metrics = by_key[(strategy, task)].metrics
            want = (f"{metrics['pass@1'].mean:.3f} · {metrics[f'pass@{k_max}'].mean:.3f} · "
                    f"{metrics['distinct_correct'].mean:.2f}")
            assert cell == want, (strategy, task)
