"""`sdbench leaderboard build` and `publish`: byte-for-byte reproducible output, markdown tables (both
checkpoints with provenance, the frontier) beside the plots, the Pareto front, a valid page with no
results, and publishing to a local bare git repository (and the HF error without a token).

    pytest tests/leaderboard/test_leaderboard_site.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lb_fixtures import make_run

from sdbench.errors import UserError
from sdbench.leaderboard import build_site, publish_git, publish_hf, submit
from sdbench.presentation.plots import colors, label_offsets, pareto_front


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_is_byte_for_byte_reproducible(results_dir: Path, built_site: Path, tmp_path: Path) -> None:
    # a second build from a copy of the results, in a fresh process with another hash seed
    copy = tmp_path / "elsewhere" / "results"
    shutil.copytree(results_dir, copy)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = tmp_path / "again"
    subprocess.run([sys.executable, "-c", "from sdbench.cli import main; main()", "leaderboard", "build",
                    "--results", str(copy), "--out", str(out)], check=True, env=env, capture_output=True)
    first, second = _files(built_site), _files(out)
    assert sorted(first) == ["README.md", "index.html", *sorted(f"plots/{kind}-{task}.svg" for task in ("graph_paths",
                             "toy_pick") for kind in ("curves", "mechanism", "pareto", "trajectories"))]
    assert first == second
    html = first["index.html"].decode()
    # nothing that loads: no src/href to a URL, no CSS url() or @import, no <link>; SVG has no build date
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?https?:|@import|<link""", html)
    assert "<script src" not in html and "<dc:date>" not in first["plots/curves-toy_pick.svg"].decode()


def test_readme_has_the_tables_and_links_the_plots(built_site: Path) -> None:
    readme = (built_site / "README.md").read_text()
    assert "## graph_paths" in readme and "## toy_pick" in readme
    columns = ("| run | strategy | pass@1 | pass@16 | any correct of 8 | pass@auc | pass@gain | distinct_correct "
               "| semantic_classes | ood pass@1 | ood any correct of 8 | amplification slope |")
    assert readme.count(columns + " selected step | provenance |") == 2
    assert readme.count(columns + " provenance |") == 2
    graph = readme.split("## graph_paths")[1].split("## toy_pick")[0]
    best, rest = graph.split("### best-val checkpoint")[1].split("### final checkpoint")
    final, frontier = rest.split("### frontier")
    for table in (best, final):
        assert sum(line.startswith("| run-") for line in table.splitlines()) == 7
    # provenance on every row: commit, config hash, teacher, lr, steps, base model hash
    assert all("| not measured |" in line for line in best.splitlines() if line.startswith("| run-"))   # schema 2
    live = next(line for line in best.splitlines() if "single_sampled_demo[teacher=live]" in line)
    assert live.endswith("| 50.0 [38, 61] | commit 0123456789ab · config aaaa1111 · teacher live, lr 0.0003, 4 steps "
                         "· model abababababab · gate failed: delta_auc |")
    base = next(line for line in final.splitlines() if line.startswith("| run-b | base |"))
    assert base.endswith("| commit 0123456789ab · config bbbb2222 · no training · model abababababab · "
                         "gate failed: delta_auc |")
    assert "| run | strategy | KL 0.01 | KL 0.02 | KL 0.05 | KL 0.1 | KL 0.2 |" in frontier
    assert "| run-b | base |" + " – (0/3 seeds) |" * 5 in frontier
    for target in ("plots/trajectories-graph_paths.svg", "plots/curves-graph_paths.svg", "plots/pareto-toy_pick.svg"):
        assert f"]({target})" in readme and (built_site / target).stat().st_size > 1000
    assert "(Pareto)" in best and "(Pareto)" not in final


def test_a_submitted_run_builds(tmp_path: Path) -> None:
    # the real path end to end: a run directory aggregated by summarize, submitted, built
    run = make_run(tmp_path / "run", strategies=("base", "single_sampled_demo", "grpo"))
    submit(run, tmp_path / "results", "real")
    build_site(tmp_path / "results", tmp_path / "site")
    readme = (tmp_path / "site" / "README.md").read_text()
    assert readme.count("| real |") == 3 * 2 + 3       # best_val and final rows, frontier rows
    assert "teacher ema (tau 0.05), lr 0.0003, 4 steps" in readme and "no training" in readme
    assert (tmp_path / "site" / "plots" / "trajectories-graph_paths.svg").stat().st_size > 1000


def test_no_results_is_a_valid_page_saying_so(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    written = build_site(tmp_path / "results", tmp_path / "site")
    assert sorted(p.name for p in written) == ["README.md", "index.html"]
    html = (tmp_path / "site" / "index.html").read_text()
    assert "0 submitted run(s)" in html and "No results yet" in html and html.rstrip().endswith("</html>")
    assert "No results yet: `sdbench leaderboard submit RUN_DIR`." in (tmp_path / "site" / "README.md").read_text()


def test_rebuild_drops_plots_of_tasks_that_left(results_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "curves-gone.svg").write_text("<svg/>")
    (out / "plots" / "logo.svg").write_text("<svg/>")
    build_site(results_dir, out)
    assert not (out / "plots" / "curves-gone.svg").exists() and (out / "plots" / "logo.svg").exists()


def test_each_task_version_is_its_own_section(tmp_path: Path) -> None:
    """Two versions of a testbed (another base model or corpus) are never compared: each gets its own tables,
    Pareto front and plots, newest first ("10" after "2" numerically); cells that recorded no version are a
    section of their own."""
    from lb_fixtures import make_results

    from sdbench.runs.store import atomic_write_json

    results = tmp_path / "results"
    for name, version, seed in (("run-old", None, 1), ("run-v2", "2", 2), ("run-v10", "10", 3)):
        doc = make_results(name, tasks=("graph_paths",), strategies=("base", "grpo"), rng_seed=seed,
                           config_hash=f"{seed:08x}")
        for cell in doc["cells"]:
            cell["task_version"] = version
        atomic_write_json(results / f"{name}.json", doc)
    out = tmp_path / "site"
    build_site(results, out)
    readme = (out / "README.md").read_text()
    assert [line for line in readme.splitlines() if line.startswith("## ")] == [
        "## graph_paths · version 10", "## graph_paths · version 2", "## graph_paths · version not recorded"]
    for section, run in zip(readme.split("\n## ")[1:], ("run-v10", "run-v2", "run-old"), strict=True):
        rows = [line for line in section.splitlines() if line.startswith("| run-")]
        assert {row.split(" | ")[0] for row in rows} == {f"| {run}"}      # only that version's run
        best = section.split("### best-val checkpoint")[1].split("### final checkpoint")[0]
        assert "(Pareto)" in best                                            # a front of its own
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(
        f"{kind}-graph_paths{suffix}.svg" for kind in ("curves", "mechanism", "pareto", "trajectories")
        for suffix in ("-v10", "-v2", ""))
    html = (out / "index.html").read_text()
    for anchor in ("task-graph_paths-v10", "task-graph_paths-v2", "task-graph_paths"):
        assert f'<section id="{anchor}">' in html and f'href="#{anchor}"' in html


def test_a_real_model_run_is_its_own_section_and_headline(tmp_path: Path) -> None:
    """A run that named a real pretrained model (`--model`) on the same task and version as a testbed run is
    another base model: its own section after the testbeds', its own plots, not in the testbeds' headline but
    in `real_model_table` (pass@8 at its n), and its claims name the model."""
    from lb_fixtures import make_results

    from sdbench.leaderboard.claims import claims
    from sdbench.leaderboard.headline import headline_table, real_model_table
    from sdbench.leaderboard.schema import Results
    from sdbench.runs.store import atomic_write_json

    results = tmp_path / "results"
    docs = {}
    for name, model, seed in (("testbed", None, 1), ("real", "smollm2-135m-instruct", 2)):
        doc = make_results(name, tasks=("graph_paths",), strategies=("base", "single_sampled_demo", "grpo"),
                           rng_seed=seed, config_hash=f"{seed:08x}")
        doc["config"]["model"] = model
        for cell in doc["cells"]:
            cell["task_version"] = "3"
        atomic_write_json(results / f"{name}.json", doc)
        docs[name] = Results.model_validate(doc)
    out = tmp_path / "site"
    build_site(results, out)
    readme = (out / "README.md").read_text()
    assert [line for line in readme.splitlines() if line.startswith("## ")] == [
        "## graph_paths · version 3", "## graph_paths · version 3 · real pretrained model smollm2-135m-instruct"]
    real_section = readme.split("\n## ")[2]
    assert {row.split(" | ")[0] for row in real_section.splitlines() if row.startswith("| ")
            and " | " in row and not row.startswith("| run |") and not row.startswith("|---")} >= {"| real"}
    assert "| testbed |" not in real_section
    assert (out / "plots" / "pareto-graph_paths-v3-smollm2-135m-instruct.svg").is_file()
    both = [docs["testbed"], docs["real"]]
    assert headline_table(both) == headline_table([docs["testbed"]])
    assert real_model_table([docs["testbed"]]) == ""
    real_table = real_model_table(both)
    assert real_table.splitlines()[0] == "| strategy | graph_paths (smollm2-135m-instruct) |"
    row = docs["real"].summary.rows
    final = next(r for r in row if (r.strategy, r.split, r.checkpoint) == ("base", "test", "final"))
    assert (f"| `base` | {final.metrics['pass@1'].mean:.3f} · {final.metrics['pass@8'].mean:.3f} · "
            f"{final.metrics['distinct_correct'].mean:.2f} |") in real_table.splitlines()
    labels = {c.task for c in claims(both)}
    assert labels == {"graph_paths", "graph_paths (real pretrained model smollm2-135m-instruct)"}
    assert {c.metric for c in claims([docs["real"]])} >= {"pass@8"}
    assert "pass@16" not in {c.metric for c in claims([docs["real"]])}


def test_pareto_front() -> None:
    points = [(1.0, 0.5), (2.0, 0.4), (1.5, 0.3), (0.5, 0.6), (2.0, 0.2)]
    assert pareto_front(points) == [0, 1, 3]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def test_every_strategy_of_a_task_gets_its_own_color() -> None:
    # 11 built-in strategies overflow tab10; the 11th must not reuse the 1st's blue
    labels = [f"strategy_{i:02d}" for i in range(20)]
    palette = colors(labels)
    assert len(set(palette.values())) == 20
    assert colors(list(reversed(labels))) == palette   # by name, not by submission order


def test_scatter_labels_of_coincident_points_do_not_overlap() -> None:
    # three collapsed strategies on one spot, one neighbour just below, one far away
    anchors = [(100.0, 50.0), (100.0, 50.0), (100.0, 50.0), (110.0, 45.0), (300.0, 200.0)]
    widths, height = [60.0, 80.0, 70.0, 50.0, 40.0], 7.0
    offsets = label_offsets(anchors, widths, height)
    boxes = [(x + dx, y + dy, x + dx + w, y + dy + height)
             for (x, y), (dx, dy), w in zip(anchors, offsets, widths, strict=True)]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    assert offsets[4] == (5.0, 4.0)   # a label with room stays where it always was
    assert len({dy for _, dy in offsets[:3]}) == 3


def test_publish_to_a_bare_repository(results_dir: Path, built_site: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote))
    workdir = tmp_path / "user-checkout"          # the user's own tree is never touched
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    commit = publish_git(results_dir, str(remote), "gh-pages")
    assert list(workdir.iterdir()) == []
    bare = f"--git-dir={remote}"
    assert _git(bare, "rev-parse", "refs/heads/gh-pages").strip() == commit
    assert subprocess.run(["git", bare, "show", "gh-pages:index.html"], capture_output=True, check=True).stdout \
        == (built_site / "index.html").read_bytes()
    files = set(_git(bare, "ls-tree", "-r", "--name-only", "gh-pages").split())
    assert {"README.md", ".nojekyll", "results/run-a.json", "plots/pareto-toy_pick.svg"} <= files
    # unchanged results: nothing new is pushed; changed results: one commit on top, history kept
    assert publish_git(results_dir, str(remote), "gh-pages") == commit
    smaller = tmp_path / "smaller"
    smaller.mkdir()
    shutil.copy(results_dir / "run-a.json", smaller)
    second = publish_git(smaller, str(remote), "gh-pages")
    assert _git(bare, "rev-parse", f"{second}^").strip() == commit
    assert "results/run-b.json" not in _git(bare, "ls-tree", "-r", "--name-only", "gh-pages")


def test_publish_refusals_are_one_line(results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="cannot reach git remote"):
        publish_git(results_dir, str(tmp_path / "no-such-remote.git"), "gh-pages")
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(UserError, match="no Hugging Face token found"):
        publish_hf(results_dir, "org/leaderboard")
    with pytest.raises(UserError, match="is not ORG/NAME"):
        publish_hf(results_dir, "just-a-name")
