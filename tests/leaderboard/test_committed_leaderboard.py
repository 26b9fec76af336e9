"""The repository's own leaderboard: whatever is committed under leaderboard/ is honest. Every committed
results file validates (schema 2) and its summary recomputes from its per-problem counts; each covers
every strategy x task x seed of its own config; a fresh build reproduces the committed site byte for
byte (with no results: a valid page saying so).

    pytest tests/leaderboard/test_committed_leaderboard.py

If this fails after a change to the site's code or its plotting library, rebuild and commit:
`sdbench leaderboard build`. The main README's headline table must equal
`sdbench.leaderboard.headline.headline_table` of the committed results.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdbench.leaderboard import Results, build_site, load_results

ROOT = Path(__file__).resolve().parents[2]
LEADERBOARD = ROOT / "leaderboard"
RESULTS = LEADERBOARD / "results"


def _committed() -> list[Path]:
    from sdbench.leaderboard.submit import results_paths

    return results_paths(RESULTS)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".html", ".md", ".svg") and p.parent.name != "results"}


@pytest.fixture(scope="module")
def committed() -> list[Results]:
    """Every committed submission, re-validated here: schema, completeness, summary recomputed from the counts."""
    return [load_results(path) for path in _committed()]


def test_every_committed_results_file_is_named_for_itself(committed: list[Results]) -> None:
    from sdbench.leaderboard.submit import results_stem

    assert [r.name for r in committed] == [results_stem(p) for p in _committed()]
    assert all(p.name.endswith(".json.gz") for p in _committed())      # what submit writes
    for path in _committed():
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_each_results_file_covers_its_own_config(committed: list[Results]) -> None:
    from sdbench.config import RunConfig
    from sdbench.runs.cell import plan_cells

    for results in committed:
        config = RunConfig.model_validate(results.config)
        assert config.config_hash() == results.provenance.config_hash, results.name
        assert {c.key for c in plan_cells(config)} == {c.key for c in results.cells}, results.name
        for cell in results.cells:
            assert cell.status == "ok", cell.key
            assert all(split in cell.eval["final"] for split in config.evaluation.splits), cell.key
            if cell.trajectory:   # a task with a val split: trajectory from the base model, both checkpoints
                assert cell.trajectory[0].step == 0 and set(cell.eval) == {"best_val", "final"}, cell.key
            assert cell.train is None or cell.train.log == [], cell.key   # the per-step log stays in the run


def test_committed_site_is_rebuilt_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(RESULTS, out)
    committed, rebuilt = _files(LEADERBOARD), _files(out)
    assert sorted(committed) == sorted(rebuilt), "leaderboard/ holds other or fewer files than a build writes"
    stale = [name for name in rebuilt if committed[name] != rebuilt[name]]
    assert not stale, f"committed {stale} differ from a fresh build: run `sdbench leaderboard build`"
    if not _committed():
        assert all("No results yet" in committed[name].decode() for name in ("index.html", "README.md"))


def test_cli_build_in_place_changes_nothing(tmp_path: Path) -> None:
    # the exact command a maintainer runs, on a copy of the repository's leaderboard folder
    copy = tmp_path / "leaderboard"
    shutil.copytree(LEADERBOARD, copy)
    before = _files(copy)
    subprocess.run([sys.executable, "-c", "from sdbench.cli import main; main()", "leaderboard", "build",
                    "--results", str(copy / "results"), "--out", str(copy)], check=True, capture_output=True)
    assert _files(copy) == before


def test_the_main_readme_headline_table_is_the_committed_numbers(committed: list[Results]) -> None:
    """README.md's leaderboard table is exactly `headline_table` of the committed results."""
    from sdbench.leaderboard.headline import headline_table

    readme = (ROOT / "README.md").read_text()
    if not committed:
        pytest.skip("no committed results")
    table = headline_table(committed)
    assert table in readme, "README.md's headline table differs from the committed results:\n" + table
    testbeds = [c for c in committed if not c.config.get("model")]     # real-model runs: real_model_table's
    assert len(table.splitlines()) == 2 + len({r.strategy for c in testbeds for r in c.summary.rows})


def test_the_main_readme_real_model_table_is_the_committed_numbers(committed: list[Results]) -> None:
    """README.md's real-model table is exactly `real_model_table` of the committed results, one line per arm."""
    from sdbench.leaderboard.headline import real_model_table

    real = [c for c in committed if c.config.get("model")]
    if not real:
        pytest.skip("no committed real-model results")
    table = real_model_table(committed)
    assert table in (ROOT / "README.md").read_text(), "README.md's real-model table differs:\n" + table
    assert len(table.splitlines()) == 2 + len({r.strategy for c in real for r in c.summary.rows})


def test_headline_shows_the_newest_task_version_once(committed: list[Results]) -> None:
    """Two submissions measuring one (strategy, task): the headline shows the newer task version's cell and
    sums each strategy's pass@1 over the cells it shows, not over both submissions."""
    from sdbench.leaderboard.headline import headline_cells

    if not committed:
        pytest.skip("no committed results")
    old = committed[0]
    task = old.summary.rows[0].task
    new = old.model_copy(deep=True)
    for cell in new.cells:
        if cell.task == task:
            cell.task_version = "10"   # newer than any committed version, and "10" > "9" as numbers
    rows = [r for r in new.summary.rows if r.task == task and r.split == "test" and r.checkpoint == "final"]
    for row in rows:
        row.metrics["pass@1"] = row.metrics["pass@1"].model_copy(update={"mean": 0.123})
    _, before, score_before = headline_cells([old])
    for docs in ([old, new], [new, old]):   # the version decides, not the order
        _, cells, score = headline_cells(docs)
        for row in rows:
            assert cells[row.strategy][task].startswith("0.123 · ")
            others = {t: c for t, c in cells[row.strategy].items() if t != task}
            assert others == {t: c for t, c in before[row.strategy].items() if t != task}
            old_pass1 = next(r.metrics["pass@1"].mean for r in old.summary.rows if (r.task, r.strategy, r.split,
                             r.checkpoint) == (task, row.strategy, "test", "final"))
            assert score[row.strategy] == pytest.approx(score_before[row.strategy] - old_pass1 + 0.123)


def test_the_readme_what_it_shows_is_generated_from_the_results(committed: list[Results]) -> None:
    """README.md's "What it shows" is exactly `what_it_shows` of the committed results (no quoted number can drift),
    and every claimed direction has a seed-aware 95% CI that excludes 0 (otherwise: "no detectable difference")."""
    from sdbench.leaderboard.claims import claims, what_it_shows

    if not committed:
        pytest.skip("no committed results")
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- what-it-shows:start -->\n")[1].split("\n<!-- what-it-shows:end -->")[0]
    assert section == what_it_shows(committed), "regenerate README's What it shows from sdbench.leaderboard.claims"
    found = claims(committed)
    assert found and {c.other for c in found} == {"base", "grpo"}
    assert {c.where.split(" (")[0] for c in found} >= {"final step", "KL 0.1"}
    assert any(c.where.startswith("val pass@1 ") and "iso-accuracy" in c.where for c in found)   # the results carry it
    for c in found:
        excludes_zero = c.stat.ci_low > 0 or c.stat.ci_high < 0
        assert (c.direction != "no detectable difference") == excludes_zero, c
        assert (c.direction == "higher") == (c.stat.ci_low > 0), c
        assert c.text() in section


def test_every_interval_the_readmes_real_model_section_quotes_is_a_committed_number(committed: list[Results]) -> None:
    """The hand-written paragraphs of README's real-model section quote paired differences as "+0.072 [+0.032,
    +0.112]": each must be a paired delta (final or best-val, test) or a matched delta of the committed real-model
    results, at the quoted decimals — a number that drifts from the results, or was never in them, fails."""
    import re

    real = [c for c in committed if c.config.get("model")]
    if not real:
        pytest.skip("no committed real-model results")
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Real pretrained model")[1].split("### What it shows")[0]
    quoted = re.findall(r"([+-]\d+\.(\d+)) \[([+-]\d+\.\d+), ([+-]\d+\.\d+)\]", section)
    assert len(quoted) >= 7          # the 7 written there at the time of this test
    stats = [s for doc in real for d in (*doc.summary.deltas, *doc.summary.matched_deltas)
             for s in d.metrics.values() if s is not None]
    for mean, decimals, low, high in quoted:
        places = len(decimals)
        text = [f"{v:+.{places}f}" for v in (float(mean), float(low), float(high))]
        found = any([f"{v:+.{places}f}" for v in (s.mean, s.ci_low, s.ci_high)] == text for s in stats)
        assert found, f"README quotes {mean} [{low}, {high}], which is no committed real-model delta"
