"""`sdbench run --reuse` (sdbench.runs.reuse) through the real command line: a cell's result does not depend on
which other arms a run lists (the premise), a run joined from two earlier runs gives the summary a fresh run of
its config gives, byte for byte, and submits; runs of other settings are refused with one line.

Run: pytest tests/test_reuse.py
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from helpers import run_cli as cli
from helpers import smoke_args

from sdbench.config import resolve_config

# the parts of a record that name the run it came from or its timings, not its result
RUN_FIELDS = ("config_hash", "integrity", "wall_s", "timing")


def _run(env: dict[str, str], out: Path, strategies: str, *extra: str) -> str:
    done = cli(["run", *smoke_args(strategies, seeds=2), "--out", str(out), *extra], env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _result(path: Path) -> dict:
    record = {k: v for k, v in json.loads(path.read_text()).items() if k not in RUN_FIELDS}
    if record.get("train"):
        record["train"] = {k: v for k, v in record["train"].items() if k != "wall_s"}
    return record


@pytest.fixture(scope="module")
def runs(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reuse")
    paths = {name: root / name for name in ("ab", "c", "fresh", "joined")}
    _run(env, paths["ab"], "base,grpo")
    _run(env, paths["c"], "grpo,single_sampled_demo")
    _run(env, paths["fresh"], "base,grpo,single_sampled_demo")
    return paths


def test_a_cells_result_does_not_depend_on_the_other_arms_of_its_run(runs: dict[str, Path]) -> None:
    """grpo ran beside base in one run and beside single_sampled_demo in another: the same records (counts,
    trajectories, classes) and the same samples, byte for byte, apart from the run's hash and the timings."""
    for seed in (0, 1):
        name = f"toy_pick__grpo__seed{seed}"
        assert _result(runs["ab"] / "cells" / f"{name}.json") == _result(runs["c"] / "cells" / f"{name}.json")
        assert ((runs["ab"] / "samples" / f"{name}.jsonl.gz").read_bytes()
                == (runs["c"] / "samples" / f"{name}.jsonl.gz").read_bytes())


def test_a_joined_run_reuses_every_cell_and_gives_the_fresh_runs_summary(env, runs, tmp_path) -> None:
    joined = runs["joined"]
    stdout = _run(env, joined, "base,grpo,single_sampled_demo", "--reuse", str(runs["ab"]), "--reuse", str(runs["c"]))
    assert "reused 6 finished cell(s) from 2 run(s)" in stdout
    # nothing was recomputed: every record is its source's file, byte for byte (grpo from the first source)
    for path in sorted((joined / "cells").glob("*.json")):
        source = runs["c"] if "single_sampled_demo" in path.name else runs["ab"]
        assert path.read_bytes() == (source / "cells" / path.name).read_bytes()
    assert (joined / "summary.json").read_bytes() == (runs["fresh"] / "summary.json").read_bytes()
    sources = json.loads((joined / "reused.json").read_text())["sources"]
    assert [len(s["cells"]) for s in sources] == [4, 2]
    assert json.loads((joined / "provenance.json").read_text())["reused"] == sources
    # resuming reuses nothing more and changes nothing
    assert "reused 0 finished cell(s)" in _run(env, joined, "base,grpo,single_sampled_demo", "--reuse",
                                                 str(runs["ab"]))
    assert (joined / "summary.json").read_bytes() == (runs["fresh"] / "summary.json").read_bytes()
    # the leaderboard takes it: the reused cells' hashes are vouched for by their sources
    results = tmp_path / "results"
    done = cli(["leaderboard", "submit", str(joined), "--name", "joined", "--results", str(results)], env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(gzip.decompress((results / "joined.json.gz").read_bytes()))
    assert len({c["config_hash"] for c in doc["cells"]}) == 2 and len(doc["provenance"]["reused"]) == 2


def test_a_forged_source_is_refused_at_submit(env, runs, tmp_path) -> None:
    """A results file whose reused source claims other settings (more training steps) than the run: refused."""
    results = tmp_path / "results"
    assert cli(["leaderboard", "submit", str(runs["joined"]), "--name", "j", "--results", str(results)],
               env).returncode == 0
    doc = json.loads(gzip.decompress((results / "j.json.gz").read_bytes()))
    source = doc["provenance"]["reused"][0]
    source["config"]["training"]["steps"] += 1
    source["config_hash"] = resolve_config(source["config"]).config_hash()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**doc, "name": "forged"}))
    done = cli(["leaderboard", "submit", str(forged), "--results", str(tmp_path / "other")], env)
    assert done.returncode == 2 and "does not compute cells like this run's" in done.stderr
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr


def test_a_run_of_other_settings_is_refused_with_one_line(env, runs, tmp_path) -> None:
    (tmp_path / "longer.yaml").write_text("training: {steps: 3}\n")
    out = tmp_path / "other"
    done = cli(["run", *smoke_args("base,grpo", seeds=2), "--config", str(tmp_path / "longer.yaml"), "--out",
                str(out), "--reuse", str(runs["ab"])], env)
    assert done.returncode == 2 and "ran with other settings (training.steps: 3 here" in done.stderr
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
    assert not list((out / "cells").glob("*.json")) if (out / "cells").exists() else True
    missing = cli(["run", *smoke_args("base", seeds=2), "--out", str(tmp_path / "x"), "--reuse",
                   str(tmp_path / "nowhere")], env)
    assert missing.returncode == 2 and "is not a readable sdbench run directory" in missing.stderr
